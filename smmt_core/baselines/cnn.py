"""The plain-CNN baseline: the model's own slices, a small CNN that keeps positions, nothing else.

Why it is here: it answers "does the transformer add anything over a CNN on the same pixels?".
Four conv blocks (as SMMT's MRI encoder) whose final feature map is flattened into a linear
classifier, so every position has its own weights — the readout a position-blind pooling lacks.
Adam, weight decay, mild intensity augmentation, the epoch with the best validation loss kept.
"""

from __future__ import annotations

import numpy as np

CNN_EPOCHS = 30
CNN_BATCH = 16


def _network(n_slices: int, size: int, n_classes: int):
    from torch import nn

    widths = (8, 16, 32, 32)
    layers, c_in = [], n_slices
    for c_out in widths:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    cells = (size // 16) ** 2 * widths[-1]
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.3), nn.Linear(cells, n_classes))


def fit_predict_cnn(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                    test_x: np.ndarray, n_classes: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Class probabilities for test_x. Inputs: (N, S·H·W) slices in [0, 1], NaN rows = no MRI."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    s, h, w = shape

    def tensor(x):
        x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0)
        return torch.from_numpy(x).reshape(-1, s, h, w)

    xt, yt = tensor(train_x), torch.as_tensor(train_y, dtype=torch.long)
    xv, yv = tensor(val_x), torch.as_tensor(val_y, dtype=torch.long)
    net = _network(s, h, n_classes)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    best_loss, best_state = float("inf"), None
    for _ in range(CNN_EPOCHS):
        net.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(order), CNN_BATCH):
            idx = order[start:start + CNN_BATCH]
            batch = xt[idx] * (1 + 0.1 * (torch.rand(len(idx), 1, 1, 1, generator=generator) - 0.5))
            loss = F.cross_entropy(net(batch), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(F.cross_entropy(net(xv), yv)) if len(xv) else float(loss)
        if val_loss < best_loss:
            best_loss, best_state = val_loss, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(tensor(test_x)), dim=1).numpy().astype(np.float64)
