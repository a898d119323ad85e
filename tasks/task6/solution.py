import numpy as np
import torch
import torch.nn as nn

torch.manual_seed({{seed}})
rng = np.random.default_rng({{seed}})

# 8x8 RGB images stored channels-last, (N, H, W, C), like numpy/PIL arrays.
# Each shows one of 4 small strokes at a random position: -, |, \, /
BAR = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]])
SHAPES = [BAR, BAR.T, np.eye(3), np.fliplr(np.eye(3))]

def make_images(n):
    labels = rng.integers(0, 4, n)
    images = 0.2 * rng.standard_normal((n, 8, 8, 3))
    for i, c in enumerate(labels):
        r, col = rng.integers(0, 6, 2)
        images[i, r:r + 3, col:col + 3, :] += SHAPES[c][:, :, None] * rng.uniform(0.5, 1.5, 3)
    return images.astype(np.float32), labels

images, labels = make_images(500)
X = torch.from_numpy(images).permute(0, 3, 1, 2)
y = torch.from_numpy(labels)

model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 2 * 2, 4),
)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()

for epoch in range(8):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 100):
        idx = perm[i:i + 100]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()

def predict(images):
    """Class logits for a batch of stored images (N, H, W, C)."""
    return model(images.permute(0, 3, 1, 2))

print("first image ->", predict(torch.from_numpy(images[:1])).argmax().item(), "label", labels[0])
