import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed({{data_seed}})

# Four process readings and a continuous quality score to predict from them.
def make_data(n):
    x = torch.randn(n, 4)
    y = torch.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + x[:, 2] + 0.1 * torch.randn(n)
    return x, y


X, y = make_data(1000)

model = nn.Sequential(
    nn.Linear(4, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 1), nn.ReLU(),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

for epoch in range(40):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 100):
        idx = perm[i:i + 100]
        optimizer.zero_grad()
        pred = model(X[idx])
        loss = F.mse_loss(pred, y[idx])
        loss.backward()
        optimizer.step()
    if epoch % 5 == 0:
        print(f"epoch {epoch}: loss {loss.item():.4f}")

with torch.no_grad():
    pred = model(X).squeeze(1)
    r2 = 1 - ((pred - y) ** 2).mean() / y.var()
print(f"TRAIN_R2:{r2.item():.3f}")
