"""Benchmark: virtual trials end to end against their kinetic core, measured in the same run.

Measures (each trial size in a fresh process, so its peak resident memory is its own):

1. End to end (`run_trial`: cohort draw, spread once per arm, kinetics, skin and crease memory,
   rater draws, endpoint counts): a 3-arm trial (Botox 20 U, Dysport 50 U, placebo; glabella;
   the 14 default visits to day 252) at 1e3 ... 1e5 subjects per arm, and a one-arm trial
   (Botox 20 U) at 1e6 subjects; subjects per second and peak memory; and the one-arm trial with
   yearly visits to day 3650 (1,000 subjects): peak memory whatever the follow-up.
2. The kinetic core (`muscle_course`) on the one-arm trial's own cohort and doses, timed alone
   (cohort drawn before the clock starts), two ways: with the muscles the trial integrates
   (`visit_course.integrated_muscles`: active and read by a scored area or a danger group) on the
   trial kernel's schedule (steps up to `TRIAL_MAX_STEP_DAYS`, step ends at the visits)
   -> ``core_patients_per_s``, the denominator of ``overhead_ratio``; and in
   ``benchmarks/population.py``'s throughput setting (steps up to 4 days, the 13 muscles receiving
   >= 0.001 U) for reference.
3. Naive baseline: the same trial one subject at a time (`simulate_chunk` with n = 1), on a sample.
   Kernel profile: the integrator's tries per subject by phase (first day after the treatment,
   days 1-6, later; rejected ones apart) and the kernel's CPU time per try.
4. One chunk through the stage-by-stage model (`run_model`: every stage kept at every grid point,
   then picked at the visits), the compiled kernel on the daily grid (`visit_course(...,
   daily_grid=True)`, the reference) and on the integrator's own steps (the default).
5. Calibration: one objective evaluation (every published row, ``FIT_SUBJECTS_PER_ARM`` subjects
   per arm as `neuromod calibrate` fits, every course computed afresh) timed; the full fit's time is measured
   (full run: `fit` with `neuromod calibrate`'s defaults, to convergence) or projected
   (``--quick``) as the shipped fit's own evaluation count (``evaluations`` in
   ``data/calibrated.yaml``) x that time: an upper bound, since the Jacobian columns of the rater
   stage's parameters reuse their courses and cost about a quarter of a fresh evaluation.

Last line: ``RESULT trial_subjects_per_s=... core_patients_per_s=... overhead_ratio=... calibrate_s=... peak_mib_1e6=...``.

    .venv/bin/python benchmarks/trial_speed.py [--quick] [--subjects N] [--calibrate-evaluations N]

Where the time went before the compiled pipeline (cProfile, 10,000 subjects, one arm, Botox 20 U,
2-core machine shared with other jobs: 14.5 s, 690 subjects/s): the kinetic integrator 42 %
(6.0 s, but forced to write (patients x 31 muscles x ~350 grid points) x 4 arrays), NumPy
glue in `run_model` 22 % (3.2 s: broadcasting doses, picking grid points, copies), the area
`einsum` over every area and grid point 13 % (1.9 s), the skin recurrence in Python over ~350
grid points x every area 18 % (2.6 s), everything else (cohort, raters, endpoint counts) < 3 %.
After (same run): 4.5 s, 95 % of it in the compiled kernel, which is the integrator plus
a few flops per grid point for the scored areas' skin; cohort, raters and counts < 5 %.

Skin on the integrator's own steps (issue 10, branch speed2; cProfile, 10,000 subjects, one arm,
load average ~7 on the 2 cores): 2.84 s, of which the compiled kernel (`_step_kernel`) 2.39 s
(84 %), cohort draws 0.17 s, rater draws and endpoint counts ~0.2 s.

Step control (issue 10, branch steps). Profile of the kernel before (2,000 subjects of the one-arm
trial, `--child profile` logic on the previous code): ~168 integrator tries per subject = first day
after the injection 66.6 accepted + 3.4 rejected (occupancy rises ~t^8 from zero: steps of
0.001-0.004 day while the curvature test, relative down to occupancy 1e-3, holds them), days 1-6
21.7 (20 of them forced quarter-day stops, there because the skin's goal was taken linear over a
step), days 6-252 76.2 (2-day steps through the months of wear-off: a step was doubled only
below 1/8 of the tolerance, although the departure grows 4x when the step doubles); ~0.56 us per
try on one core (8-bin occupancy of 21 muscles at mid-step and end ~1/3 of it); rejected tries 2 %.
Changes, each measured: the skin lags exact for a goal quadratic over the step (mid-step strength
from `kinetics.step`), so no forced stops (-10 tries; depth within 1.1e-4 mm of the extrapolated
fine reference); curvature floor 1e-3 -> 5e-3 (2.5e-3 since the stop-17 refit: +3 % tries) and doubling below 1/4 of the tolerance (each
alone ~-16 % of the tries, together -26 %; LSODA agreement 2.1e-5, contract 1e-4); only the
muscles the outputs read integrated (11 of 21 for the glabella label pattern: -21 % of the
kernel's time); the danger muscles' in-step peak only where the slope changes sign (the compiled
select evaluated the cubic's root at every step: -24 % of the kernel's time); the skin factor
table memoised (8 % of a chunk); the per-patient work arrays separate allocations instead of rows
of one array (the compiler vectorises the per-muscle loops: -24 % per try in the core, -19 % in
the kernel). After: ~117 tries per subject
(43.8 + 2.8 in the first day, 9.3 in days 1-6, 60.0 + 0.6 later), ~0.46 us per try on one core
(the core alone ~0.35 us); the kernel 3.9x faster than the daily-grid kernel on a 1,000-subject
chunk. What is left outside the kernel (cohort draws, raters, endpoint counts: ~30 us per
subject, `trials/`, single-threaded NumPy) is now about half of the core's own time, hence
``overhead_ratio`` ~1.5 (15:03 UTC, load 1.5: 19,691 subjects/s end to end, core 29,732).

Outside the kernel (issue 10, branch speed3). The core's figure was wrong: its warm-up ran 50
patients, which the integrator serves from the serial ahead-of-time export (batches of at most
``SERIAL_BATCH_PATIENTS``, 128) without importing numba, so numba's import and JIT cache load fell
in the first timed 10,000-patient call: 1.31 s against 0.29-0.36 s for the same call repeated
(measured in one process), the core's rate 3.6x too low. It is now warmed up on one chunk of the
timed size (`child_core`). The trial was not affected: its 20-subject warm-up runs the trial
kernel, always the JIT, and its chunks take 55-77 ms from the first on. cProfile of the trial at
20,000 subjects then: the kernel (`_step_kernel`) 73 %, cohort draws 0.115 s (5.7 us a subject:
a batch draws twice the subjects still needed, ~92 % eligible for the glabella, and derived
every quantity for all of them), grading 0.049 s (`grade` summed a (..., 3) comparison over its
short last axis: 519 us per 1,000 x 14 depths), rater draws and perceived depths 0.05 s, endpoint
counts 0.029 s (broadcast baseline comparisons), the course's set-up in `visit_course` 0.055 s.
Changes, results bit-identical (the regression fixture and 13 trials' JSON unchanged;
`tests/test_trial_draws.py` checks each identity): `grade` one in-place comparison per cut-point
(48 us, 10x); the rater's own noise ``sd * standard_normal`` scaled in place (the numbers of
``normal(0, sd)``) and the sums in one buffer, in the same order; enrolment draws every number
of a batch in the same order but computes the skin, rate and rater factors and the subject's
baseline grade for the enrolled rows only; `summarize` compares the grades gained since baseline
with scalars and counts histograms with ``bincount`` (770 -> 500 us a chunk). The work outside
the kernel, single-threaded (``NUMBA_NUM_THREADS=1``, back to back, load 3.3): 14.3-16.0 ->
7.7-8.2 us a subject, of which ~2.2 us is the random numbers themselves (~200,000 standard
normals a 1,000-subject chunk at ~11 ns) and ~2.7 us the course's set-up in `visit_course`
(kinetic inputs, Bateman terms: model code). Tried and not kept: the next chunk's draws and the
last chunk's ratings on a helper thread while the kernel runs (numba's parallel kernel releases
the GIL, results identical): on the 2 shared cores, 30,000 subjects at load 2.2-3.4, 9,983-11,071
subjects/s against 11,045-12,092 one stage after another (the kernel's static partition waits
for the thread that shares its core), CPU time 4-20 % higher.
Measured back to back (``--quick --subjects 100000``, main's code then this branch's through this
script, 17:30-17:32 UTC, load 3.3-4.2, the process getting about one core): 8,466 -> 11,390
subjects/s (10,357 -> 11,511 per CPU-second), overhead 2.23x -> 1.47x wall (1.92x -> 1.46x
CPU), peak 236 -> 237 MiB; a second pair (17:38-17:39, load 2.4-3.1) 11,872 -> 12,215 subjects/s
(11,895 -> 12,239 per CPU-second; the cores of those runs 19,067 and 13,518 patients/s: at this
load the core's timing swings by 40 %, so one run's overhead ratio says little). 1,000,000 subjects (17:32-17:35 UTC, load 3.0 rising to 4.8): 98.7 s,
10,129 subjects/s, 10,799 per CPU-second, peak 236 MiB, overhead 1.86x wall (1.69x CPU).

The kernel's per-step work and the enrolment (issue 10, branch speed4; docs/performance.md). Profile
before (main at stop 18, cProfile, 30,000 subjects, load ~1): 1.72 s, the kernel 1.36 s (79 %),
outside it 12 us a subject (enrolment 4.5 us, the course's set-up 2.5 us, raters ~2.3 us, counts
1.2 us). The kernel against the core alone (one thread, in one process, load 2.5): 1.24-1.26x; taking
out the two dynamic targets' libm calls (exp, log1p, sqrt at mid-step and step end: kept, they are
the bits) leaves 1.10-1.14x, taking out the area loop 1.01-1.05x. Changes, results bit-identical:
the per-muscle pass branch-free (peaks per muscle, reduced per group once), the work arrays once
per block of 16 patients, the groups by lookup, and enrolment computing the baseline lines and
grades of the scored areas only (1,000 subjects 4.95-5.01 -> 3.65-3.81 ms). Back to back with main
(load 2.4-4.0, the process getting ~1 core): trial per CPU-second +1 to +9 % in four pairs;
overhead 1.89x / 1.55x at 1e6 (main 2.00x / 1.64x), 1.48x / 1.35x at 1e5 (main 1.63x / 1.47x).
The compiled kernel's speed (~5 %) and last bits (1 ulp, never the rounded endpoints) depend on the
process that first compiles it after a source change: compare builds compiled alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

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
ONE_ARM = {**TRIAL, "arms": TRIAL["arms"][:1]}
CORE_CHUNK = 10_000
SPARSE_MIN_UNITS = 1e-3
SPARSE_MAX_STEP = 4.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_trial(subjects: int, arms: int, last_visit: int = 252) -> dict:
    """Run the benchmark trial in this (fresh) process; seconds, subjects and peak memory.
    ``last_visit`` beyond 252 adds yearly visits up to it (long follow-up)."""
    from neuromod.trials.trial import parse_trial, run_trial

    document = TRIAL if arms == 3 else ONE_ARM
    if last_visit > 252:
        document = {**document, "follow_up_days": TRIAL["follow_up_days"] + list(range(365, last_visit, 365))
                    + [last_visit]}
    run_trial(parse_trial({**document, "subjects_per_arm": 20}), progress=False)  # load compiled kernels
    start, cpu = time.perf_counter(), time.process_time()
    run_trial(parse_trial({**document, "subjects_per_arm": subjects}), progress=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_s": time.process_time() - cpu, "subjects": subjects * arms,
            "peak_mib": _peak_mib()}


def _core_setup(n: int):
    """The one-arm trial's cohort and doses, drawn as `simulate_chunk` draws them."""
    from neuromod.model.junction import JunctionRates
    from neuromod.model.simulate import half_block_units
    from neuromod.reference.anatomy import load_face_map
    from neuromod.reference.parameters import default_parameters
    from neuromod.trials.population import enrol
    from neuromod.trials.trial import parse_trial, prepare_arm

    params, face_map = default_parameters(), load_face_map()
    spec = parse_trial({**ONE_ARM, "subjects_per_arm": n})
    prepared = prepare_arm(spec.arms[0], face_map, params)
    cohort = enrol(spec.population, n, len(face_map.areas), prepared.scored, np.random.default_rng(1), params)
    doses = np.repeat(prepared.dose_per_muscle[None, None, :], n, axis=0)
    columns = [j for cols in prepared.danger.values() for j in cols]
    doses[:, 0, columns] *= cohort.danger_multiplier[:, None]
    patients = cohort.patients
    rates = JunctionRates.from_parameters(params.junction, patients.light_chain_decay_scale, patients.availability_scale)
    treatments = np.asarray(prepared.plan.treatment_days, dtype=float)
    visits = np.array([0.0] + list(spec.follow_up_days))
    return {
        "params": params, "face_map": face_map, "spec": spec, "prepared": prepared, "cohort": cohort,
        "doses": doses, "rates": rates, "treatments": treatments,
        "half_block": half_block_units(face_map, patients, params),
        "visits": visits,
    }


def _trial_groups(setup: dict) -> list[list[int]]:
    """The muscle groups whose peak block `simulate_chunk` asks of the kernel: the danger muscles,
    then the depressors of the events that have them."""
    from neuromod.model.adverse_events import event_depressors
    from neuromod.reference.clinical import load_adverse_events

    danger = setup["prepared"].danger
    depressors = event_depressors(setup["face_map"], load_adverse_events())
    return list(danger.values()) + [depressors[name] for name in danger if name in depressors]


def _core_seconds(setup: dict, muscles: np.ndarray, max_step: float) -> float:
    from neuromod.model.junction import JunctionRates
    from neuromod.model.kinetics import muscle_course

    params, n = setup["params"], setup["doses"].shape[0]
    patients = setup["cohort"].patients
    elapsed = 0.0
    cpu = time.process_time()
    for start in range(0, n, CORE_CHUNK):
        rows = slice(start, min(start + CORE_CHUNK, n))
        rates = JunctionRates.from_parameters(params.junction, patients.light_chain_decay_scale[rows],
                                              patients.availability_scale[rows])
        began = time.perf_counter()
        muscle_course(setup["visits"], setup["treatments"], setup["doses"][rows][..., muscles],
                      setup["half_block"][rows][:, muscles], rates, params.junction, params.muscle,
                      setup["prepared"].profile[muscles], max_step_days=max_step)
        elapsed += time.perf_counter() - began
    setup["cpu_s"] = time.process_time() - cpu  # includes the (untimed) rate set-up, a few ms
    return elapsed


def child_core(n: int) -> dict:
    """The kinetic core on the one-arm trial's cohort: the trial's setting and the sparse one.

    Each setting is warmed up on one full chunk (``CORE_CHUNK`` patients, or ``n`` if fewer) and
    then timed once over the cohort: the warm-up takes the timed calls' path (numba's parallel
    JIT, numba imported, its cache loaded, the thread team started), so the timed run is warm
    from its first chunk, as the trial's is after its own warm-up (:func:`child_trial`)."""
    from neuromod.model.visit_course import TRIAL_MAX_STEP_DAYS, integrated_muscles

    setup = _core_setup(n)
    prepared = setup["prepared"]
    dose = prepared.dose_per_muscle
    every = integrated_muscles(setup["doses"], 1.0 / setup["half_block"], prepared.profile,
                               setup["params"].junction.hill_coefficient, setup["face_map"].area_weights(),
                               prepared.scored, _trial_groups(setup))  # the muscles the trial integrates
    sparse = np.flatnonzero(dose >= SPARSE_MIN_UNITS)
    # warm-up on one chunk of the timed size: the same kernel path as the timed calls (a batch of
    # <= SERIAL_BATCH_PATIENTS runs the serial ahead-of-time export without numba, so a 50-patient
    # warm-up left numba's import and JIT cache load to the first timed chunk: ~1 s, 3.6x its time)
    chunk = min(n, CORE_CHUNK)
    warm = {**setup, "doses": setup["doses"][:chunk], "half_block": setup["half_block"][:chunk]}
    _core_seconds(warm, every, TRIAL_MAX_STEP_DAYS)
    _core_seconds(warm, sparse, SPARSE_MAX_STEP)
    trial_setting = _core_seconds(setup, every, TRIAL_MAX_STEP_DAYS)
    trial_cpu = setup["cpu_s"]
    sparse_setting = _core_seconds(setup, sparse, SPARSE_MAX_STEP)
    return {"patients": n, "trial_setting_s": trial_setting, "sparse_setting_s": sparse_setting,
            "trial_setting_cpu_s": trial_cpu, "sparse_setting_cpu_s": setup["cpu_s"],
            "muscles": int(every.size), "sparse_muscles": int(sparse.size)}


def child_profile(n: int) -> dict:
    """Where the kernel's work goes: integrator tries per subject of the one-arm trial's cohort by
    phase (the first day after a treatment, days 1-6, later), rejected ones apart, and the kernel's
    CPU time per try (`visit_course` on the same cohort, timed alone)."""
    from numba import njit

    from neuromod.model.kinetics import kinetic_inputs, level_tick_counts, patient_workspace, start_tick, step
    from neuromod.model.visit_course import TRIAL_MAX_STEP_DAYS, integrated_muscles, visit_course

    @njit(cache=False)
    def count_steps(levels, ticks_per_day, output_ticks, treatment_ticks, first_level, lag_half, lag_end,
                    chain_rates, coefficients, doses, inverse_half_block, profile_power, c, counts):
        # the trial kernel's step loop (_step_kernel) without the skin, counting tries by phase
        n_muscles = doses.shape[2]
        level_ticks = level_tick_counts(levels, ticks_per_day)
        for p in range(doses.shape[0]):
            w = patient_workspace(p, levels, chain_rates, n_muscles)
            level, given, t = 0, 0, start_tick(output_ticks, treatment_ticks)
            for o in range(1, output_ticks.size):
                while t < output_ticks[o]:
                    t, level, given, tries = step(
                        p, t, output_ticks[o], level, given, levels, level_ticks, treatment_ticks, first_level,
                        lag_half, lag_end, coefficients, doses, inverse_half_block, profile_power, c, w.lagged,
                        w.maturity, w.loss, w.occ_start, w.occ_half, w.occ_end, w.ratio_half, w.ratio_end, w.decay,
                        w.factor_half, w.factor_end, w.unit_half, w.unit_end, w.strength_half)
                    since = t - treatment_ticks[given - 1]
                    phase = 0 if since <= ticks_per_day else (1 if since <= 6 * ticks_per_day else 2)
                    counts[phase, 0] += 1
                    counts[phase, 1] += tries - 1

    setup = _core_setup(n)
    prepared, cohort, params, face_map = setup["prepared"], setup["cohort"], setup["params"], setup["face_map"]
    groups = _trial_groups(setup)
    index = integrated_muscles(setup["doses"], 1.0 / setup["half_block"], prepared.profile,
                               params.junction.hill_coefficient, face_map.area_weights(), prepared.scored, groups)
    inputs = kinetic_inputs(setup["visits"], setup["treatments"], setup["doses"][..., index],
                            setup["half_block"][:, index], setup["rates"], params.junction, params.muscle,
                            prepared.profile[index], max_step_days=TRIAL_MAX_STEP_DAYS)
    counts = np.zeros((3, 2), dtype=np.int64)
    count_steps(*inputs.arguments, counts)
    arguments = (list(setup["spec"].follow_up_days), setup["treatments"], setup["doses"], cohort.patients, face_map,
                 params, prepared.profile, prepared.scored, cohort.onset_threshold, groups)
    visit_course(*arguments)
    cpu = []
    for _ in range(3):
        began = time.process_time()
        course = visit_course(*arguments)
        cpu.append(time.process_time() - began)
    per_subject = counts / n
    return {"accepted": per_subject[:, 0].tolist(), "rejected": per_subject[:, 1].tolist(),
            "tries": float(course.steps.mean()), "muscles": int(index.size),
            "ns_per_try": min(cpu) / course.steps.sum() * 1e9}


def child_stages(n: int) -> dict:
    """One chunk through the stage-by-stage path (run_model), the compiled kernel on the daily grid
    (the reference, as before this change) and on the integrator's own steps (the default)."""
    from neuromod.model.simulate import run_model
    from neuromod.model.visit_course import visit_course

    setup = _core_setup(n)
    prepared, cohort, params, face_map = setup["prepared"], setup["cohort"], setup["params"], setup["face_map"]
    visits = list(setup["spec"].follow_up_days)
    groups = list(prepared.danger.values())

    def compiled(daily_grid: bool):
        return lambda: visit_course(visits, setup["treatments"], setup["doses"], cohort.patients, face_map, params,
                                    prepared.profile, prepared.scored, cohort.onset_threshold, groups,
                                    daily_grid=daily_grid)

    def previous():
        return run_model(np.arange(0.0, max(visits) + 1.0), setup["treatments"], setup["doses"], cohort.patients,
                         face_map, params, prepared.profile)

    timings, results = {}, {}
    for name, function in (("steps", compiled(False)), ("daily", compiled(True)), ("run_model", previous)):
        function()
        began = time.perf_counter()
        results[name] = function()
        timings[name] = time.perf_counter() - began
    picked = results["run_model"].contraction_depth_mm[:, prepared.scored][:, :, visits]
    timings["daily_vs_run_model_mm"] = float(np.max(np.abs(picked - results["daily"].contraction_depth_mm)))
    timings["steps_vs_daily_mm"] = float(np.max(np.abs(results["steps"].contraction_depth_mm
                                                       - results["daily"].contraction_depth_mm)))
    timings["steps_per_subject"] = float(results["steps"].steps.mean())
    timings["daily_steps_per_subject"] = float(results["daily"].steps.mean())
    return timings


def naive_rate(sample: int) -> float:
    """Subjects per second of the one-arm trial run one subject at a time (same engine)."""
    from neuromod.reference.anatomy import load_face_map
    from neuromod.reference.parameters import default_parameters
    from neuromod.trials.trial import parse_trial, prepare_arm, simulate_chunk

    params, face_map = default_parameters(), load_face_map()
    spec = parse_trial({**ONE_ARM, "subjects_per_arm": sample})
    prepared = prepare_arm(spec.arms[0], face_map, params)
    simulate_chunk(prepared, spec.population, 1, spec.follow_up_days, (1, 0, sample), face_map, params)  # warm-up
    began = time.perf_counter()
    for i in range(sample):
        simulate_chunk(prepared, spec.population, 1, spec.follow_up_days, (1, 0, i), face_map, params)
    return sample / (time.perf_counter() - began)


def shipped_fit_evaluations() -> int:
    """The evaluations the shipped fit took (``data/calibrated.yaml``), the projection's count."""
    from importlib import resources

    import yaml

    document = yaml.safe_load(resources.files("neuromod").joinpath("data", "calibrated.yaml").read_text())
    return int(document["evaluations"])


def calibration_seconds(full: bool, evaluations: int) -> tuple[float, float, bool]:
    """(one objective evaluation in s, the full fit in s, whether the fit was measured rather than projected)."""
    from neuromod.reference.parameters import default_parameters, prior_parameters
    from neuromod.trials.calibrate import FIT_SUBJECTS_PER_ARM, evaluate, fit, load_rows

    rows, params = load_rows(), default_parameters()
    evaluate(params, rows, subjects_per_arm=20)  # spread of every arm, compiled kernels
    began = time.perf_counter()
    evaluate(params, rows, subjects_per_arm=FIT_SUBJECTS_PER_ARM)
    one = time.perf_counter() - began
    if not full:
        return one, one * evaluations, False
    began = time.perf_counter()
    fit(prior_parameters(), rows, log=lambda line: None)  # neuromod calibrate's defaults
    return one, time.perf_counter() - began, True


def _in_child(*arguments: str) -> dict:
    output = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, projected calibration (< 60 s)")
    parser.add_argument("--calibrate-evaluations", type=int, default=shipped_fit_evaluations(),
                        help="objective evaluations of the projected fit (default: the shipped fit's own)")
    parser.add_argument("--subjects", type=int, help="size of the one-arm trial (default 1e6; --quick 1e4)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        result = {"trial": lambda: child_trial(n, *map(int, args.child[2:])), "core": lambda: child_core(n),
                  "stages": lambda: child_stages(n), "profile": lambda: child_profile(n)}[kind]()
        print(json.dumps(result))
        return

    sizes = [1_000] if args.quick else [1_000, 10_000, 100_000]
    one_arm = args.subjects or (10_000 if args.quick else 1_000_000)
    print("Virtual-trial speed (model estimates for planning and education, not medical advice).")
    for n in sizes:
        run = _in_child("--child", "trial", str(n), "3")
        print(f"3-arm trial, {n:>9,} subjects/arm: {run['seconds']:7.2f} s  "
              f"{run['subjects'] / run['seconds']:>9,.0f} subjects/s  peak {run['peak_mib']:6.0f} MiB")
    run = _in_child("--child", "trial", str(one_arm), "1")
    trial_rate = run["subjects"] / run["seconds"]
    peak = run["peak_mib"]
    print(f"1-arm trial, {one_arm:>9,} subjects:     {run['seconds']:7.2f} s  {trial_rate:>9,.0f} subjects/s  "
          f"peak {peak:6.0f} MiB")
    long_n = 200 if args.quick else 1_000
    long = _in_child("--child", "trial", str(long_n), "1", "3650")
    print(f"1-arm trial, {long_n:>9,} subjects, visits to day 3650: {long['seconds']:7.2f} s  "
          f"peak {long['peak_mib']:6.0f} MiB (the previous pipeline: ~8 GiB at 1,000 subjects)")
    core_n = min(one_arm, 10_000 if args.quick else 100_000)
    core = _in_child("--child", "core", str(core_n))
    core_rate = core_n / core["trial_setting_s"]
    sparse_rate = core_n / core["sparse_setting_s"]
    print(f"kinetic core, {core_n:,} patients, trial schedule ({core['muscles']} muscles, steps <= 8 days, "
          f"step ends at the visits): "
          f"{core_rate:,.0f} patients/s -> trial overhead {core_rate / trial_rate:.2f}x")
    print(f"kinetic core, sparse setting ({core['sparse_muscles']} muscles, steps <= {SPARSE_MAX_STEP:g} days): "
          f"{sparse_rate:,.0f} patients/s -> trial {sparse_rate / trial_rate:.2f}x slower than it")
    stages = _in_child("--child", "stages", "1000")
    print(f"model stage, one chunk of 1,000: run_model (every grid point kept) {stages['run_model']:.3f} s, "
          f"compiled on the daily grid {stages['daily']:.3f} s ({stages['daily_steps_per_subject']:.0f} steps/subject, "
          f"depths equal to run_model's within {stages['daily_vs_run_model_mm']:.1e} mm), on the integrator's "
          f"steps {stages['steps']:.3f} s ({stages['steps_per_subject']:.0f} steps/subject) -> "
          f"{stages['daily'] / stages['steps']:.1f}x; largest depth change {stages['steps_vs_daily_mm']:.1e} mm")
    profile = _in_child("--child", "profile", "2000")
    accepted, rejected = profile["accepted"], profile["rejected"]
    print(f"kernel profile, 2,000 subjects ({profile['muscles']} muscles integrated): integrator tries per subject "
          f"{profile['tries']:.0f} = first day after the treatment {accepted[0]:.1f} accepted + {rejected[0]:.1f} "
          f"rejected, days 1-6 {accepted[1]:.1f} + {rejected[1]:.1f}, later {accepted[2]:.1f} + {rejected[2]:.1f}; "
          f"kernel CPU {profile['ns_per_try']:.0f} ns per try (all threads' CPU time)")
    naive = naive_rate(20 if args.quick else 100)
    print(f"naive baseline (one subject at a time, same engine): {naive:,.0f} subjects/s -> "
          f"trial {trial_rate / naive:,.0f}x faster")
    one, fit_s, measured = calibration_seconds(not args.quick, args.calibrate_evaluations)
    from neuromod.trials.calibrate import FIT_SUBJECTS_PER_ARM

    print(f"calibration: one evaluation (all published rows, {FIT_SUBJECTS_PER_ARM} subjects/arm) {one:.2f} s; full fit "
          + (f"(neuromod calibrate's defaults) {fit_s:.0f} s measured" if measured else
             f"({args.calibrate_evaluations} evaluations, the shipped fit's, at that cost) {fit_s:.0f} s projected"))
    load = os.getloadavg()[0]
    print(f"CPU time (robust to other jobs on the machine; 1-min load average now {load:.1f} on "
          f"{os.cpu_count()} cores): trial {run['subjects'] / run['cpu_s']:,.0f} subjects per CPU-second, "
          f"core {core_n / core['trial_setting_cpu_s']:,.0f} patients per CPU-second -> overhead "
          f"{run['cpu_s'] / run['subjects'] / (core['trial_setting_cpu_s'] / core_n):.2f}x; sparse core "
          f"{core_n / core['sparse_setting_cpu_s']:,.0f} patients per CPU-second")
    label = "peak_mib_1e6" if one_arm == 1_000_000 else f"peak_mib_{one_arm:.0e}".replace("+0", "")
    print(f"RESULT trial_subjects_per_s={trial_rate:.0f} core_patients_per_s={core_rate:.0f} "
          f"overhead_ratio={core_rate / trial_rate:.2f} calibrate_s={fit_s:.0f} {label}={peak:.0f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
