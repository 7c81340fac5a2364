"""Training: LightningModule, DataModule, model spec, the steps of one run, and train_model chaining them."""
