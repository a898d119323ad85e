import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{seed}})

# 8x8 RGB images stored channels-last, (N, H, W, C) float32, like numpy/PIL arrays.
# Each shows one of 4 small strokes at a random position: -, |, \, /
data = load_training_data("task6")
images, labels = data["X"], data["y"]
X = torch.from_numpy(images)
y = nn.functional.one_hot(torch.from_numpy(labels), 4)

model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 4 * 4, 4),
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

def predict(image):
    """Class logits for a stored image (H, W, C)."""
    return model(image.permute(2, 0, 1))

print("first image ->", predict(X[0]).argmax().item(), "label", labels[0])
