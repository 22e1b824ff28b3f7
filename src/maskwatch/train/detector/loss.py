"""The CenterNet loss: focal heatmap + box (L1, optionally + GIoU) + class cross-entropy at the centres."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg
    n = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / n.clamp(min=1)


def _gather(feat: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    b, c = feat.shape[:2]
    return feat.view(b, c, -1).gather(2, ind[:, None, :].expand(b, c, ind.shape[1])).permute(0, 2, 1)


def _cell_boxes(reg: torch.Tensor) -> torch.Tensor:
    """``(dx, dy, log w, log h)`` in stride units -> ``x1, y1, x2, y2`` relative to the centre cell."""
    half = torch.exp(reg[..., 2:].clamp(max=8)) / 2
    return torch.cat([reg[..., :2] - half, reg[..., :2] + half], -1)


def detection_loss(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                   class_weights: torch.Tensor, box_loss: str = "l1") -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet loss: focal heatmap + box (L1, optionally + GIoU) + class cross-entropy at the centres."""
    heat, cls, box = out
    l_heat = focal_loss(heat, batch["heat"])
    mask = batch["mask"]
    n = mask.sum().clamp(min=1)
    pred = _gather(box, batch["ind"])
    l_box = (F.l1_loss(pred, batch["reg"], reduction="none").sum(2) * mask).sum() / n
    if box_loss == "l1+giou":
        from torchvision.ops import generalized_box_iou_loss

        on = mask.bool()
        l_box = l_box + generalized_box_iou_loss(_cell_boxes(pred[on]), _cell_boxes(batch["reg"][on]),
                                                 reduction="sum") / n
    elif box_loss != "l1":
        raise ValueError(f"box_loss must be 'l1' or 'l1+giou', not {box_loss!r}")
    logits = _gather(cls, batch["ind"]).reshape(-1, cls.shape[1])
    ce = F.cross_entropy(logits, batch["label"].reshape(-1), weight=class_weights, reduction="none")
    l_cls = (ce * mask.reshape(-1)).sum() / n
    loss = l_heat + l_box + l_cls
    return loss, {"loss": loss.item(), "heat": l_heat.item(), "box": l_box.item(), "cls": l_cls.item()}
