"""SSD multibox loss with hard negative mining (the upstream ``MultiboxLoss``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multibox_loss(logits: torch.Tensor, locs: torch.Tensor, labels: torch.Tensor, gt_locs: torch.Tensor,
                  class_weights: torch.Tensor | None = None, neg_pos_ratio: int = 3) -> dict[str, torch.Tensor]:
    """Cross-entropy over the positives and the ``neg_pos_ratio`` x hardest negatives of each image,
    Smooth-L1 over the positives' offsets; both divided by the number of positives.

    Args:
        logits: (N, P, C) class logits, class 0 = background.
        locs: (N, P, 4) predicted offsets.
        labels: (N, P) int64 target classes.
        gt_locs: (N, P, 4) target offsets.
        class_weights: (C,) weights of the positives' cross-entropy (background: 1).
    """
    pos = labels > 0
    num_pos = pos.sum().clamp(min=1).float()
    with torch.no_grad():
        bg_loss = -F.log_softmax(logits, dim=2)[:, :, 0]
        bg_loss[pos] = -float("inf")
        n_neg = (pos.sum(1, keepdim=True) * neg_pos_ratio).clamp(min=neg_pos_ratio)
        rank = bg_loss.argsort(1, descending=True).argsort(1)
        neg = rank < n_neg
    mask = pos | neg
    ce = F.cross_entropy(logits[mask], labels[mask], reduction="none")
    if class_weights is not None:
        ce = ce * class_weights.to(ce.dtype)[labels[mask]]
    cls = ce.sum() / num_pos
    box = F.smooth_l1_loss(locs[pos], gt_locs[pos], reduction="sum") / num_pos
    return {"loss": cls + box, "cls": cls.detach(), "box": box.detach()}
