"""Data: find, read, split and augment the images and masks of a dataset folder."""

# Import the submodules you need (kept light on purpose). In the order data flows through them:
#   discover (entry point) -> layouts, folders, records; check (the `data check` summary)
#   imageio (images), masks, matfile (.mat masks), limits (pixel limit before decoding)
#   duplicates (fingerprints), duplicate_report (the `data check` section)
#   splits (entry point) -> grouping, stratify, split_record (split.json)
#   modality (grey ultrasound or colour H&E, once per dataset: the strong augmentation's flavour)
#   datasets, transforms (what training reads), synth (the synthetic demo set)
