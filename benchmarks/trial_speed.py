"""Benchmark: a 2,000-subject, 3-arm, 252-day virtual trial (issue: "runs in seconds").

Peer measured in the same run: the same subjects simulated one at a time through the same
engine (the loop a user would write around `simulate`), on a sample, scaled per subject.
Prints wall time, subjects per second for both, and their ratio.

    .venv/bin/python benchmarks/trial_speed.py [--subjects 2000] [--peer-sample 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neuromod.reference.anatomy import load_face_map
from neuromod.reference.parameters import default_parameters
from neuromod.trials.trial import parse_trial, prepare_arm, run_trial, simulate_chunk

TRIAL = {
    "name": "benchmark",
    "seed": 1,
    "population": {"sex": "mixed"},
    "arms": [
        {"name": "ona-20", "product": "botox", "areas": {"glabella": 20}},
        {"name": "abo-50", "product": "dysport", "areas": {"glabella": 50}},
        {"name": "placebo", "product": "placebo", "areas": {"glabella": 0}},
    ],
    "follow_up_days": [1, 2, 3, 4, 7, 14, 30, 60, 90, 120, 150, 168, 180, 252],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--peer-sample", type=int, default=60)
    args = parser.parse_args()
    spec = parse_trial({**TRIAL, "subjects_per_arm": args.subjects})
    params, face_map = default_parameters(), load_face_map()
    run_trial(parse_trial({**TRIAL, "subjects_per_arm": 50}), progress=False)  # warm caches
    start = time.perf_counter()
    run_trial(spec, progress=False)
    vectorised = time.perf_counter() - start
    total = args.subjects * len(TRIAL["arms"])
    prepared = prepare_arm(spec.arms[0], face_map, params)
    start = time.perf_counter()
    for i in range(args.peer_sample):
        simulate_chunk(prepared, spec.population, 1, spec.follow_up_days, (1, 0, i), face_map, params)
    per_subject = (time.perf_counter() - start) / args.peer_sample
    print(f"trial: {args.subjects} subjects x {len(TRIAL['arms'])} arms x 252 days: {vectorised:.2f} s "
          f"({total / vectorised:,.0f} subjects/s)")
    print(f"peer (one subject at a time, same engine): {1 / per_subject:,.0f} subjects/s "
          f"-> projected {per_subject * total:.1f} s")
    print(f"RESULT trial_seconds={vectorised:.2f} subjects_per_s={total / vectorised:.0f} "
          f"vs_one_at_a_time={per_subject * total / vectorised:.1f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
