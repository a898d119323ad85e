import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Three concentric rings in 2-D: the class is how far a point lies from their centre.
data = load_training_data("task15")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])

model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
# Decay the learning rate a little every epoch.
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma={{gamma}})

batch_size = 50
for epoch in range(40):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), batch_size):
        idx = perm[i:i + batch_size]
        loss = criterion(model(X[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    if epoch % 5 == 0:
        with torch.no_grad():
            acc = (model(X).argmax(dim=1) == y).float().mean().item()
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}  train_acc {acc:.3f}")
