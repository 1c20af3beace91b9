"""A real workload: an RBF support-vector classifier on scikit-learn's digits.

Each run scores one (C, gamma) pair by 3-fold cross-validation. scikit-learn
ships the data set, so nothing is downloaded.
"""
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC


def run(C, gamma, **kwargs):
    X, y = load_digits(return_X_y=True)
    accuracy = cross_val_score(SVC(C=C, gamma=gamma), X / 16.0, y, cv=3).mean()
    return {"accuracy": float(accuracy), "loss": float(1.0 - accuracy)}
