import torch
import torch.nn as nn

torch.manual_seed({{data_seed}})

# Points in the square [-2, 2]^2 with three classes: inside a disc, and the sign of x*y.
def make_data(n):
    x = torch.rand(n, 2) * 4 - 2
    inside = (x[:, 0] ** 2 + x[:, 1] ** 2) < 1.5
    same_sign = (x[:, 0] * x[:, 1]) > 0
    return x, inside.long() + same_sign.long()


X, y = make_data(1000)

model = nn.Sequential(
    nn.Linear(2, 32), nn.Tanh(),
    nn.Linear(32, 32), nn.Tanh(),
    nn.Linear(32, 3),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.02)

losses = []
for epoch in range(30):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 50):
        idx = perm[i:i + 50]
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"epoch {epoch}: loss {sum(losses[-20:]) / 20:.4f}")

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"TRAIN_ACC:{train_acc:.3f}")
