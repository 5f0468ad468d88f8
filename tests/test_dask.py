"""Trials spread over a real Dask cluster give the single-process numbers."""

from neuromod.trials.trial import dask_runner, parse_trial, run_trial

SPEC = {
    "name": "dask",
    "seed": 5,
    "subjects_per_arm": 2500,  # three chunks per arm
    "population": {"sex": "mixed"},
    "arms": [
        {"name": "ona", "product": "botox", "areas": {"glabella": 20}},
        {"name": "placebo", "product": "placebo", "areas": {"glabella": 0}},
    ],
    "follow_up_days": [7, 30, 90, 120],
}


def test_two_worker_local_cluster_matches_single_process():
    spec = parse_trial(SPEC)
    single = run_trial(spec, progress=False)
    runner = dask_runner(workers=2)
    try:
        distributed = run_trial(spec, chunk_runner=runner)
    finally:
        runner.close()
    assert distributed == single
