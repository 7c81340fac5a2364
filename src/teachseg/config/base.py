"""What every config section shares: unknown keys are errors, and names are checked when a config loads.

Names (architecture, encoder, precision, accelerator, strategy) fail with a did-you-mean list
(:mod:`teachseg.names`), so a typo fails before any data is read.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from teachseg import names
from teachseg.precision import PrecisionName

# Names checked when the config loads (unknown ones fail with a did-you-mean list; see teachseg.names).
ArchName = Annotated[names.Arch, BeforeValidator(names.check_arch)]
EncoderName = Annotated[str, AfterValidator(names.check_encoder)]
AcceleratorName = Annotated[names.Accelerator, BeforeValidator(names.check_accelerator)]
StrategyName = Annotated[str, AfterValidator(names.check_strategy)]
PrecisionSetting = Annotated[PrecisionName, BeforeValidator(names.check_precision)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
