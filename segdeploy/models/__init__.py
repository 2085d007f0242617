"""The model zoo: architectures by name, a uniform logits adapter, checkpoints and model facts."""
