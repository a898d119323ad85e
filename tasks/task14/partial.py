import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Synthetic 3-class problem: 30 features, only six of them carry signal.
data = load_training_data("task14")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
N, D, C = X.shape[0], X.shape[1], 3

# Shuffle, then split into train / validation.
perm = torch.randperm(N)
X = X[perm]
y = y[perm]
X_train, y_train = X[:1000], y[:1000]
X_val, y_val = X[1000:], y[1000:]

model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, C))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

batch_size = 50
n_batches = len(X_train) // batch_size
losses = []
for epoch in range(20):
    for i in range(n_batches):
        xb = X_train[i:i + batch_size]
        yb = y_train[i:i + batch_size]
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        val_acc = (model(X_val).argmax(dim=1) == y_val).float().mean().item()
    print(f"epoch {epoch:2d}  loss {losses[-1]:.4f}  val_acc {val_acc:.3f}")
