"""In-domain self-supervised pretraining of the encoder: ``teachseg pretrain`` and ``selftrain.method: pretrain``.

Without ImageNet weights, the strongest published use of unlabelled medical images is to pretrain the encoder on
them without labels, then fine-tune it with the few masks. Here the encoder of the run's smp model learns from
the run's training images, labelled and unlabelled, never from a validation, test or other held-out image (nor
any image of their groups), with a maintained library's objectives (``lightly``: SimCLR, DenseCL) in a
Lightning loop. The result is a folder any run loads through ``model.encoder_weights``:

* ``encoder.safetensors``: the encoder's state dict, keys as smp's ``model.encoder`` has them;
* ``pretrain.json`` (:class:`teachseg.pretrain.record.PretrainRecord`): objective, settings, library versions, the
  content hash of every image it saw, and its cost (seconds, device).

Modules: :mod:`.pool` (which images it may see, and the identity of a pretraining), :mod:`.views`
(augmented views per modality), :mod:`.objectives` (the registry of objectives), :mod:`.module` (the thin
LightningModule), :mod:`.run` (one pretraining, resumable), :mod:`.guard` (refusing an encoder that saw
held-out images), :mod:`.method` (``model.encoder_weights: pretrain`` and ``selftrain.method: pretrain``).
"""
