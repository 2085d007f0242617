"""Training: losses, schedule, the loop with validation mIoU and resumable checkpoints."""
