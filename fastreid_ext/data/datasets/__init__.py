"""Cross-modality data sets, registered in fastreid's DATASET_REGISTRY."""
from .bases import INFRARED, VISIBLE, CrossModalityDataset, DatasetLayoutError, Sample
from .llcm import LLCM, LLCMVisible2Infrared
from .regdb import RegDB, RegDBThermal2Visible
from .sysu_mm01 import SYSUMM01, SYSUMM01Indoor

__all__ = ["INFRARED", "VISIBLE", "CrossModalityDataset", "DatasetLayoutError", "Sample", "LLCM",
           "LLCMVisible2Infrared", "RegDB", "RegDBThermal2Visible", "SYSUMM01", "SYSUMM01Indoor"]
