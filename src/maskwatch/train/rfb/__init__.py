"""maskwatch's single-pass face + mask detector: the Ultra-Light RFB SSD fine-tuned (torch)."""
