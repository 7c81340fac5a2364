"""Test-only probe for tests/selftrain/test_online_ddp.py, imported by every Python process started with this
folder on PYTHONPATH (the DDP launcher's children too). Inactive unless TEACHSEG_DDP_PROBE names a folder.

It records, per rank, the unlabelled indices each epoch's sampler handed out and the final model and EMA
weights and the per-epoch history, so the test can compare what the two DDP ranks did. Nothing here is part of the package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_PROBE = os.environ.get("TEACHSEG_DDP_PROBE")

if _PROBE:
    import torch

    from teachseg.selftrain import online, online_data

    _out = Path(_PROBE)
    _iter = online_data.CycleSampler.__iter__
    _end = online.OnlineSemiModule.on_train_end

    def _recording_iter(self):  # type: ignore[no-untyped-def]
        items = list(_iter(self))
        with open(_out / f"unlabelled_rank{self.rank}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"epoch": self.epoch, "indices": [i for i, _ in items]}) + "\n")
        yield from items

    def _recording_end(self):  # type: ignore[no-untyped-def]
        _end(self)
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        torch.save(state, _out / f"state_rank{self.global_rank}.pt")
        history = json.dumps(self.history)
        (_out / f"history_rank{self.global_rank}.json").write_text(history, encoding="utf-8")

    online_data.CycleSampler.__iter__ = _recording_iter  # type: ignore[method-assign]
    online.OnlineSemiModule.on_train_end = _recording_end  # type: ignore[method-assign]
