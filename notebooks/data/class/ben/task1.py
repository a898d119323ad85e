import torch
import torch.nn as nn

torch.manual_seed(4)

# Sensor readings (unnormalised, roughly in the range -60..60) and a binary label.
N_FEATURES = 4
X = torch.randn(400, N_FEATURES) * 20.0
true_w = torch.tensor([1.0, -2.0, 0.5, 1.5])
y = (X @ true_w + 6.0 * torch.randn(400) > 10.0).long()

model = nn.Linear(N_FEATURES, 2)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=12.0, momentum=0.9)

losses = []
for epoch in range(100):
    optimizer.zero_grad()
    logits = model(X)
    loss = criterion(logits, y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::10]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
