"""YuNet's training targets and loss, after the upstream head (``YuNet_Head.loss``): SimOTA
assignment (YOLOX; centre radius 2.5 strides, dynamic k from the top-10 IoUs), objectness and face
BCE, an IoU-based box loss (weight 5) on the positives, and, added for maskwatch, a class-weighted
cross-entropy over the three mask labels on the positives. Landmarks are not trained."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, complete_box_iou_loss


def decode(box: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """(…, P, 4) ``(dx, dy, log w, log h)`` -> corner boxes in pixels (`maskwatch.detectors.yunetmask.decode_boxes`)."""
    s = pts[:, 2:3]
    c = pts[:, :2] + box[..., :2] * s
    wh = torch.exp(box[..., 2:].clamp(-10, 10)) * s
    return torch.cat([c - wh / 2, c + wh / 2], -1)


@torch.no_grad()
def simota(pred_boxes: torch.Tensor, pred_score: torch.Tensor, pts: torch.Tensor, gt: torch.Tensor,
           radius: float = 2.5, topk: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Assign points to faces for one image: ``(face index per point (-1: none), IoU of the assigned pair)``.

    Args:
        pred_boxes: (P, 4) decoded predictions; pred_score: (P,) predicted face probability;
        pts: (P, 3) ``(x, y, stride)``; gt: (G, 4) face boxes, all in pixels.
    """
    p, g = len(pts), len(gt)
    assigned = torch.full((p,), -1, dtype=torch.long, device=pts.device)
    ious_out = torch.zeros(p, device=pts.device)
    if g == 0:
        return assigned, ious_out
    x, y, s = pts[:, 0:1], pts[:, 1:2], pts[:, 2:3]  # (P, 1)
    in_box = (x > gt[:, 0]) & (x < gt[:, 2]) & (y > gt[:, 1]) & (y < gt[:, 3])  # (P, G)
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
    in_ctr = ((x - cx).abs() < radius * s) & ((y - cy).abs() < radius * s)
    valid = (in_box | in_ctr).any(1)
    vi = valid.nonzero()[:, 0]
    if not len(vi):
        return assigned, ious_out
    iou = box_iou(pred_boxes[vi], gt)  # (V, G)
    prob = pred_score[vi].clamp(1e-6, 1 - 1e-6)[:, None].expand(-1, g)
    cost_cls = F.binary_cross_entropy(prob, iou, reduction="none")
    cost = cost_cls + 3.0 * -torch.log(iou + 1e-8) + 1e5 * ~(in_box[vi] & in_ctr[vi])
    k = iou.topk(min(topk, len(vi)), 0).values.sum(0).int().clamp(min=1)  # (G,)
    match = torch.zeros_like(cost, dtype=torch.bool)
    for j in range(g):
        match[cost[:, j].topk(int(k[j]), largest=False).indices, j] = True
    multi = match.sum(1) > 1
    if multi.any():  # a point claimed by several faces keeps its cheapest
        best = cost[multi].argmin(1)
        match[multi] = False
        match[multi.nonzero()[:, 0], best] = True
    rows, cols = match.nonzero(as_tuple=True)
    assigned[vi[rows]] = cols
    ious_out[vi[rows]] = iou[rows, cols]
    return assigned, ious_out


def yunet_loss(cls: torch.Tensor, obj: torch.Tensor, box: torch.Tensor, pts: torch.Tensor,
               gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor],
               class_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss of a batch.

    Args:
        cls: (N, P, 1 + C) logits: channel 0 the face score, 1.. the mask labels;
        obj: (N, P) objectness logits; box: (N, P, 4) raw box outputs; pts: (P, 3) points;
        gt_boxes / gt_labels: per image (G, 4) pixels and (G,) labels in 1..C;
        class_weights: (1 + C,) weights of the labels' cross-entropy (index 0 unused).
    """
    boxes = decode(box, pts)
    face_prob = torch.sigmoid(cls[..., 0].detach()) * torch.sigmoid(obj.detach())
    obj_t = torch.zeros_like(obj)
    pos_idx, pos_face, pos_iou, pos_lab, pos_gt = [], [], [], [], []
    for b in range(len(gt_boxes)):
        a, iou = simota(boxes[b].detach(), face_prob[b], pts, gt_boxes[b])
        m = a >= 0
        obj_t[b, m] = 1.0
        pos_idx.append(torch.stack([torch.full_like(a[m], b), m.nonzero()[:, 0]], 1))
        pos_iou.append(iou[m])
        pos_lab.append(gt_labels[b][a[m]])
        pos_gt.append(gt_boxes[b][a[m]])
        pos_face.append(a[m])
    idx = torch.cat(pos_idx)
    n = max(1, len(idx))
    loss_obj = F.binary_cross_entropy_with_logits(obj, obj_t, reduction="sum") / n
    if not len(idx):
        zero = cls.sum() * 0
        return {"loss": loss_obj + zero, "obj": loss_obj.detach(), "face": zero.detach(), "box": zero.detach(),
                "cls": zero.detach(), "positives": torch.tensor(0.0)}
    bi, pi = idx[:, 0], idx[:, 1]
    loss_face = F.binary_cross_entropy_with_logits(cls[bi, pi, 0], torch.cat(pos_iou), reduction="sum") / n
    loss_box = 5.0 * complete_box_iou_loss(boxes[bi, pi], torch.cat(pos_gt), reduction="sum") / n
    lab = torch.cat(pos_lab)
    ce = F.cross_entropy(cls[bi, pi, 1:], lab - 1, reduction="none")
    if class_weights is not None:
        ce = ce * class_weights.to(ce.dtype)[lab]
    loss_cls = ce.sum() / n
    total = loss_obj + loss_face + loss_box + loss_cls
    return {"loss": total, "obj": loss_obj.detach(), "face": loss_face.detach(), "box": loss_box.detach(),
            "cls": loss_cls.detach(), "positives": torch.tensor(float(len(idx)))}
