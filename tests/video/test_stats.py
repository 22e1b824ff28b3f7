import csv
import json
import sys

import numpy as np
import pytest

from maskwatch.faces import Faces
from maskwatch.video.stats import AlertHook, ComplianceStats

MASK, NOMASK, WRONG = [0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]


def tracked(ids, probs):
    n = len(ids)
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1))
    return Faces(boxes, probs=np.array(probs, np.float32).reshape(n, 3), track_id=ids)


def test_per_second_counts_distinct_tracks(tmp_path):
    stats = ComplianceStats()
    for i in range(30):  # 10 fps: 3 seconds
        ids, probs = ([1, 2], [MASK, NOMASK]) if i < 20 else ([1, 3], [MASK, WRONG])
        stats.update(i / 10, tracked(ids, probs))
    stats.update(3.5, Faces.empty())
    rows = stats.per_second()
    assert [r["faces"] for r in rows] == [2, 2, 2, 0]
    assert rows[0] == {"second": 0, "faces": 2, "with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 0,
                       "compliant_share": 0.5}
    assert rows[2]["mask_worn_incorrectly"] == 1 and rows[3]["compliant_share"] is None
    s = stats.summary()
    assert s["unique_tracks"] == 3 and s["faces_seen"] == 60 and s["frames"] == 31
    assert s["share_per_label"]["with_mask"] == pytest.approx(1 / 3, abs=1e-3)
    # tracks (people): 1 masked of 3; face-frames: 30 masked, 20 unmasked, 10 worn wrong
    assert s["tracks_per_label"] == {"with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 1}
    assert s["compliant_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["faces_per_label"] == {"with_mask": 30, "without_mask": 20, "mask_worn_incorrectly": 10}
    assert s["faces_compliant_share"] == 0.5
    with open(stats.write_csv(tmp_path / "c.csv")) as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == 4 and csv_rows[0]["compliant_share"] == "0.5" and csv_rows[3]["compliant_share"] == ""


def test_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the chart needs the video extra (matplotlib)")
    stats = ComplianceStats()
    for i in range(30):
        stats.update(i / 10, tracked([1, 2], [MASK, NOMASK]))
    png = stats.plot(tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_run_still_writes_outputs(tmp_path):
    stats = ComplianceStats()
    assert stats.per_second() == [] and stats.summary()["unique_tracks"] == 0
    assert stats.summary()["compliant_share"] is None
    stats.write_csv(tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text().strip() == "second,faces,with_mask,without_mask,mask_worn_incorrectly,compliant_share"
    pytest.importorskip("matplotlib", reason="the chart needs the video extra (matplotlib)")
    assert stats.plot(tmp_path / "c.png").stat().st_size > 0


def test_unclassified_faces_are_counted_but_unlabelled():
    stats = ComplianceStats()
    stats.update(0.0, Faces(np.array([[0, 0, 5, 5]], np.float32), track_id=[4]))
    assert stats.per_second()[0]["faces"] == 1 and stats.unlabelled_faces == 1


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_alert_rate_limit_and_once_per_track():
    sent, clock = [], Clock()
    hook = AlertHook(send=sent.append, min_interval=10, confidence=0.7, min_updates=2, clock=clock)
    faces = tracked([1, 2, 3], [NOMASK, WRONG, MASK])
    hook.check(faces, np.array([1, 1, 5]), 0, 0.0)  # too few classifications yet
    hook.check(faces, np.array([2, 2, 5]), 1, 0.1)  # track 1 fires, track 2 rate-limited, 3 is masked
    hook.check(faces, np.array([3, 3, 5]), 2, 0.2)  # nothing new
    clock.t = 11
    hook.check(tracked([4], [WRONG]), np.array([3]), 3, 11.0)
    hook.close()
    assert [e["track_id"] for e in sent] == [1, 4]
    assert hook.sent == 2 and hook.suppressed == 1
    assert sent[1]["label"] == "mask_worn_incorrectly" and sent[1]["time"] == 11.0


def test_alert_command_gets_json_and_environment(tmp_path):
    out = tmp_path / "alert.txt"
    script = "import json,os,sys; e=json.load(sys.stdin); open(sys.argv[1],'w').write(e['label']+' '+os.environ['MASKWATCH_TRACK_ID'])"
    hook = AlertHook(command=f'"{sys.executable}" -c "{script}" "{out}"', confidence=0.5, min_updates=1)
    hook.check(tracked([9], [NOMASK]), np.array([1]), 0, 0.0)
    hook.close()
    assert out.read_text() == "without_mask 9"


def test_failing_alert_is_logged_not_raised(caplog):
    hook = AlertHook(command="exit 3", confidence=0.5, min_updates=1)
    hook.check(tracked([1], [NOMASK]), np.array([1]), 0, 0.0)
    hook.close()
    assert hook.failed == 1 and "exited with 3" in caplog.text


def test_webhook_posts_json():
    import http.server
    import threading

    bodies = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    hook = AlertHook(url=f"http://127.0.0.1:{srv.server_address[1]}/hook", confidence=0.5, min_updates=1)
    hook.check(tracked([5], [WRONG]), np.array([1]), 7, 0.5)
    hook.close()
    srv.server_close()
    assert bodies and bodies[0]["track_id"] == 5 and bodies[0]["frame"] == 7


def test_webhook_must_be_http():
    with pytest.raises(ValueError, match="http"):
        AlertHook(url="ftp://x")
