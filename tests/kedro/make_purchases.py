#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate tests/data/kedro_project/data/01_raw/purchases.csv: synthetic
e-commerce sessions (visits, duration, views, cart adds -> purchased), with a
fixed seed so that the file is reproducible."""
import math
import random
import sys

rng = random.Random(7)
out = open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout
out.write("visits,duration,num_views,cart_adds,purchased\n")
for _ in range(400):
    visits = rng.randint(1, 12)
    duration = round(rng.uniform(5, 900), 1)
    views = rng.randint(1, 40)
    adds = rng.randint(0, 6)
    z = -5.5 + 0.15 * visits + 0.003 * duration + 0.04 * views + 0.8 * adds + rng.gauss(0, 0.8)
    purchased = int(rng.random() < 1 / (1 + math.exp(-z)))
    out.write(f"{visits},{duration},{views},{adds},{purchased}\n")
