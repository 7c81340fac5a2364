"""Training: a thin LightningModule, a DataModule, and the function that builds the Trainer and writes a run."""
