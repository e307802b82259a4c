"""Evaluation, shared by training and probes: scores of the test split and accuracies.

Training evaluates by goodness over all labels (FF: every layer, the last layer, the mean of the last k
layers, §5.4 and appendix I) or by the output logits (baselines); probes score their classifiers with
`accuracy`. Evaluation goes over a data.DeviceLoader in order, without gradients, in evaluation mode (batch norm
with its running statistics), in the recipe's precision.
"""

import torch


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose highest score is the label: scores (N, classes[, layers]) -> scalar or (layers,)."""
    hits = scores.argmax(1) == (labels if scores.dim() == 2 else labels[:, None])
    return hits.float().mean(0)


@torch.no_grad()
def evaluate(trainer, loader, last_k: int) -> dict:
    """Per-layer and ensemble test accuracy, maximal goodness (FF) and maximal |weight| per layer."""
    trainer.net.eval()
    scores = torch.cat([trainer.scores(images) for images, _ in loader])
    trainer.net.train()
    labels = loader.labels
    per_layer = accuracy(scores, labels)
    ensemble = accuracy(scores[:, :, -last_k:].mean(2), labels)
    true_scores = scores[torch.arange(len(labels), device=scores.device), labels]
    max_goodness = true_scores.max(0).values if trainer.scores_are_goodness else torch.full_like(per_layer, float("nan"))
    scored = scores.shape[2]  # FF: every layer; baselines: only the output layer
    return {"layer": list(range(trainer.num_layers - scored + 1, trainer.num_layers + 1)),
            "accuracy": per_layer.tolist(), "acc_last": per_layer[-1].item(),
            "acc_last_k": ensemble.item() if scored >= last_k else float("nan"),
            "max_goodness": max_goodness.tolist(), "max_abs_weight": trainer.max_abs_weights()[-scored:].tolist()}
