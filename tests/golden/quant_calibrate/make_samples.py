#!/usr/bin/env python3
"""make_samples.py: writes the tiny calibration files of the quant_calibrate
golden cases (committed; run again only to change them).

two_samples.npy  float32 [2, 4]: two samples of an input of shape [1, 4]
                 (the data set splits axis 0 into batch-1 samples).
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
np.save(os.path.join(HERE, "two_samples.npy"),
        np.array([[-1.0, 0.5, 2.0, 0.0],
                  [1.5, -0.5, 0.25, 1.0]], dtype=np.float32))
