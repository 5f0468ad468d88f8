"""Benchmark: a population through the junction and muscle model, neuromod against libRoadRunner and SciPy.

The same cohort (the label glabella plan, Botox 20 U, treated on days 0 and 120, 365 days;
patients differ in sensitivity, light-chain persistence, absorption and the toxin reaching danger
muscles, drawn as in virtual trials) is simulated three ways:

(a) neuromod's engine (:func:`neuromod.model.kinetics.muscle_course`, all patients together, chunked);
(b) libRoadRunner running the exported SBML (``neuromod export-sbml``) patient by patient;
(c) SciPy ``solve_ivp`` (LSODA) on the same ODEs (:func:`neuromod.model.kinetics.patient_ode`) patient
    by patient.

Muscles: the 13 the plan sends at least 0.001 U to (the other 18 the field touches get < 1e-4 U).

1. Agreement: daily trajectories of blocked fraction and strength for a few hundred patients,
   peers at tight tolerances (rtol 1e-10); the measure is :func:`neuromod.model.kinetics.relative_error`
   (relative, absolute below 1e-3). The engine is also checked in its throughput setting (outputs
   at the visits, steps up to 4 days).
2. Throughput with the outputs a trial needs: every muscle's blocked fraction and strength at the
   14 visits of the trial contract and day 365, kept for every patient (float32). All three use
   every core of the machine: the engine's threads, a process pool for the peers (peers at
   rtol 1e-6, atol 1e-10, whose own agreement is printed too). Peers are timed on a sample.
3. Engine time and peak memory (resident set of a fresh process) at 1e3 ... 1e6 patients.

Last line: ``RESULT patients_per_s=... vs_roadrunner=... vs_scipy=... max_rel_err=... peak_mib_1e6=...``.

    .venv/bin/python benchmarks/population.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool

import numpy as np

from neuromod import parse_plan
from neuromod.export.sbml import plan_to_sbml
from neuromod.model.adverse_events import event_muscles
from neuromod.model.junction import JunctionRates
from neuromod.model.kinetics import muscle_course, patient_ode, relative_error
from neuromod.model.simulate import half_block_units, plan_injections
from neuromod.model.spread import spread
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.clinical import load_adverse_events
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.patient import PatientDescription
from neuromod.trials.population import cohort_like
from neuromod.trials.trial import DEFAULT_FOLLOW_UP

PLAN = {"product": "botox", "areas": {"glabella": 20}, "treatment_days": [0, 120]}
TREATMENTS = np.array([0.0, 120.0])
VISITS = np.array(DEFAULT_FOLLOW_UP + [365], dtype=float)
DAILY = np.arange(0.0, 366.0)
MIN_UNITS = 1e-3
CHUNK = 50_000
THROUGHPUT_MAX_STEP = 4.0
TIGHT = (1e-10, 1e-14)
PEER = (1e-6, 1e-10)


@dataclass
class Cohort:
    """What differs between patients, as the three methods take it."""

    doses: np.ndarray  # (n, n_muscles) units per treatment
    half_block: np.ndarray  # (n, n_muscles)
    light_chain_decay_scale: np.ndarray  # (n, 1)
    availability_scale: np.ndarray  # (n, 1)


class Setup:
    def __init__(self) -> None:
        self.params, self.face_map = default_parameters(), load_face_map()
        self.plan = parse_plan(PLAN)
        result = spread(self.face_map, plan_injections(self.plan.points(self.face_map), self.plan),
                        self.plan.product_info.spread_factor, self.params.spread)
        self.index = np.flatnonzero(result.dose_per_muscle > MIN_UNITS)
        self.keys = [self.face_map.regions[j].key for j in self.index]
        self.dose = result.dose_per_muscle[self.index]
        self.profile = result.profile[self.index]
        varied = {j for js in event_muscles(self.face_map, load_adverse_events()).values() for j in js}
        self.danger = np.array([j in varied for j in self.index])  # as trials: muscles of events with a threshold
        self.sbml, exported = plan_to_sbml(self.plan, self.params, self.face_map, min_units=MIN_UNITS)
        assert exported == self.keys

    def cohort(self, n: int, seed: int) -> Cohort:
        rng = np.random.default_rng([seed, n])
        drawn = cohort_like(PatientDescription(), n, self.face_map.areas, rng, self.params)
        doses = np.where(self.danger, self.dose * drawn.danger_multiplier[:, None], self.dose)
        half_block = half_block_units(self.face_map, drawn.patients, self.params)[:, self.index]
        return Cohort(doses, half_block, drawn.patients.light_chain_decay_scale, drawn.patients.availability_scale)

    def rates(self, cohort: Cohort, rows=slice(None)) -> JunctionRates:
        return JunctionRates.from_parameters(self.params.junction, cohort.light_chain_decay_scale[rows],
                                             cohort.availability_scale[rows])

    def engine(self, cohort: Cohort, days: np.ndarray, max_step: float):
        doses = np.repeat(cohort.doses[:, None, :], TREATMENTS.size, axis=1)
        course = muscle_course(days, TREATMENTS, doses, cohort.half_block, self.rates(cohort), self.params.junction,
                               self.params.muscle, self.profile, max_step_days=max_step)
        return course.blocked_fraction, course.strength


# -- peers, one patient at a time (module-level so process pools can call them) -------------------
_SETUP: Setup | None = None
_RUNNER = None


def _init_peer() -> None:
    global _SETUP, _RUNNER
    import roadrunner

    roadrunner.Logger.setLevel(roadrunner.Logger.LOG_ERROR)
    _SETUP = Setup()
    _RUNNER = roadrunner.RoadRunner(_SETUP.sbml)


def roadrunner_patient(args):
    """Blocked fraction and strength (n_muscles, n_days) of one patient in libRoadRunner."""
    cohort, p, days, (rtol, atol) = args
    setup, runner = _SETUP, _RUNNER
    runner.resetAll()
    runner.integrator.relative_tolerance = rtol
    runner.integrator.absolute_tolerance = atol
    outflow, gain = setup.rates(cohort, slice(p, p + 1)).by_treatment(TREATMENTS, setup.params.junction).chain()
    runner["k_depot"] = float(np.ravel(outflow[0])[0])
    runner["k_avail"] = float(np.ravel(gain[0])[0])
    for k, rate in enumerate(np.ravel(outflow[4])):
        runner[f"k_lc_{k + 1}"] = float(rate)
    for m, key in enumerate(setup.keys):
        runner[f"L50_{key}"] = float(cohort.half_block[p, m])
        runner[f"dose_{key}"] = float(cohort.doses[p, m])
    runner.reset()  # re-fires the day-0 treatment with this patient's doses
    selections = [f"blocked_{k}" for k in setup.keys] + [f"strength_{k}" for k in setup.keys]
    times = [0.0] + [float(d) for d in days if d > 0]  # simulations start at 0, with the first treatment
    table = np.array(runner.simulate(times=times, selections=selections))[len(times) - np.size(days):]
    n = len(setup.keys)
    return table[:, :n].T, table[:, n:].T


def scipy_patient(args):
    """Blocked fraction and strength (n_muscles, n_days) of one patient with SciPy's LSODA."""
    from scipy.integrate import solve_ivp

    cohort, p, days, (rtol, atol) = args
    setup = _SETUP
    rhs, depots, observe = patient_ode(cohort.doses[p], cohort.half_block[p], setup.rates(cohort, slice(p, p + 1)),
                                       TREATMENTS, setup.params.junction, setup.params.muscle, setup.profile)
    state = np.zeros((5 * TREATMENTS.size + 3) * len(setup.keys))
    parts = []
    bounds = list(TREATMENTS) + [days[-1]]
    for k, (begin, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        state[depots[k]] += cohort.doses[p]
        last = k == len(bounds) - 2
        inside = days[(days >= begin) & ((days <= end) if last else (days < end))]
        solution = solve_ivp(rhs, (begin, end), state, method="LSODA", t_eval=inside, rtol=rtol, atol=atol)
        parts.append(solution.y)
        state = solution.y[:, -1] if inside[-1] == end else solve_ivp(
            rhs, (inside[-1], end), solution.y[:, -1], method="LSODA", rtol=rtol, atol=atol).y[:, -1]
    return observe(np.concatenate(parts, axis=1))


def run_peer(pool: Pool, function, cohort: Cohort, days: np.ndarray, tolerances) -> tuple[np.ndarray, np.ndarray, float]:
    n = cohort.doses.shape[0]
    start = time.perf_counter()
    results = pool.map(function, [(cohort, p, days, tolerances) for p in range(n)], chunksize=max(1, n // 32))
    seconds = time.perf_counter() - start
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results]), seconds


def _first(cohort: Cohort, n: int) -> Cohort:
    """The first ``n`` patients of ``cohort``."""
    return Cohort(cohort.doses[:n], cohort.half_block[:n], cohort.light_chain_decay_scale[:n],
                  cohort.availability_scale[:n])


# -- engine at scale, one fresh process per size ---------------------------------------------------
def engine_run(n: int) -> dict:
    """Time (cohort drawn, integrated, outputs kept) and peak resident memory for ``n`` patients."""
    setup = Setup()
    setup.engine(setup.cohort(64, 0), VISITS, THROUGHPUT_MAX_STEP)  # load the compiled integrator
    n_muscles, n_visits = setup.index.size, VISITS.size
    blocked = np.empty((n, n_muscles, n_visits), dtype=np.float32)
    strength = np.empty((n, n_muscles, n_visits), dtype=np.float32)
    start = time.perf_counter()
    for first in range(0, n, CHUNK):
        size = min(CHUNK, n - first)
        b, s = setup.engine(setup.cohort(size, first), VISITS, THROUGHPUT_MAX_STEP)
        blocked[first:first + size], strength[first:first + size] = b, s
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"patients": n, "seconds": seconds, "patients_per_s": n / seconds, "peak_mib": peak_mib,
            "mean_corrugator_strength_day30": float(strength[:, 0, list(VISITS).index(30)].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (agreement on 8 patients, SciPy on 1; engine at 1e3 and 1e4): under 60 s")
    parser.add_argument("--engine-run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_run:
        print(json.dumps(engine_run(args.engine_run)))
        return
    cores = os.cpu_count() or 1
    # SciPy's LSODA on 169 states with finite-difference Jacobians costs seconds per patient at
    # rtol 1e-10, so the quick mode checks it on 1 patient (libRoadRunner and the engine on 8) and
    # times it on 2 without a warm-up (it compiles nothing)
    check_n, scipy_check_n, roadrunner_n, scipy_n = (8, 1, 32, 2) if args.quick else (200, 200, 1000, 200)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]

    setup = Setup()
    print(f"plan: Botox 20 U glabella, treated on days 0 and 120, 365 days; {setup.index.size} muscles; "
          f"{cores} cores for every method (engine threads, peer process pools)")
    with Pool(cores, initializer=_init_peer) as pool:
        # 1. agreement on daily trajectories
        cohort = setup.cohort(check_n, 1)
        rr_b, rr_s, _ = run_peer(pool, roadrunner_patient, cohort, DAILY, TIGHT)
        sp_b, sp_s, _ = run_peer(pool, scipy_patient, _first(cohort, scipy_check_n), DAILY, TIGHT)
        k = scipy_check_n
        en_b, en_s = setup.engine(cohort, DAILY, 1.0)
        visit_columns = VISITS.astype(int)
        ev_b, ev_s = setup.engine(cohort, VISITS, THROUGHPUT_MAX_STEP)
        errors = {
            "engine vs libRoadRunner (daily)": max(relative_error(en_b, rr_b), relative_error(en_s, rr_s)),
            "engine vs SciPy (daily)": max(relative_error(en_b[:k], sp_b), relative_error(en_s[:k], sp_s)),
            "engine, throughput setting, vs libRoadRunner (visits)": max(
                relative_error(ev_b, rr_b[..., visit_columns]), relative_error(ev_s, rr_s[..., visit_columns])),
            "SciPy vs libRoadRunner (daily)": max(relative_error(sp_b, rr_b[:k]), relative_error(sp_s, rr_s[:k])),
        }
        max_rel_err = max(v for k, v in errors.items() if k.startswith("engine"))
        print(f"\n1. agreement, {check_n} patients ({scipy_check_n} for SciPy) x {setup.index.size} muscles x 366 days "
              "(relative error; absolute below 1e-3), peers at rtol 1e-10:")
        for name, value in errors.items():
            print(f"   {name:55s} {value:.2e}")
        print(f"   {'check (<= 1e-4)':55s} {'pass' if max_rel_err <= 1e-4 else 'FAIL'}")

        # 2. throughput at the visits
        peers = {}
        for name, function, n in (("libRoadRunner", roadrunner_patient, roadrunner_n), ("SciPy LSODA", scipy_patient, scipy_n)):
            cohort = setup.cohort(n, 2)
            if not (args.quick and function is scipy_patient):
                run_peer(pool, function, setup.cohort(cores, 3), VISITS, PEER)  # warm the workers
            b, s, seconds = run_peer(pool, function, cohort, VISITS, PEER)
            reference = setup.engine(cohort, DAILY, 1.0)
            own = max(relative_error(b, reference[0][..., visit_columns]), relative_error(s, reference[1][..., visit_columns]))
            peers[name] = (n / seconds, own, n)
    runs = []
    for n in sizes:
        output = subprocess.run([sys.executable, __file__, "--engine-run", str(n)], capture_output=True, text=True, check=True)
        runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
    engine_rate = runs[-1]["patients_per_s"]
    print(f"\n2. throughput, outputs at {VISITS.size} visit days for every muscle, {cores} cores each:")
    print(f"   {'method':18s} {'patients/s':>12s} {'engine is':>10s}  notes")
    print(f"   {'neuromod engine':18s} {engine_rate:12.0f} {'':>10s}  {runs[-1]['patients']:,} patients")
    for name, (rate, own, n) in peers.items():
        print(f"   {name:18s} {rate:12.1f} {engine_rate / rate:9.0f}x  {n} patients; rtol 1e-6: "
              f"{own:.1e} from the engine's daily run")
    print("\n3. engine at scale (fresh process each; peak resident memory includes Python and libraries):")
    print(f"   {'patients':>10s} {'seconds':>9s} {'patients/s':>11s} {'peak MiB':>9s}")
    for run in runs:
        print(f"   {run['patients']:10,d} {run['seconds']:9.2f} {run['patients_per_s']:11.0f} {run['peak_mib']:9.0f}")
    largest = runs[-1]
    label = "1e6" if largest["patients"] == 1_000_000 else f"{largest['patients']:.0e}".replace("+0", "")
    print(f"RESULT patients_per_s={engine_rate:.0f} vs_roadrunner={engine_rate / peers['libRoadRunner'][0]:.0f} "
          f"vs_scipy={engine_rate / peers['SciPy LSODA'][0]:.0f} max_rel_err={max_rel_err:.1e} "
          f"peak_mib_{label}={largest['peak_mib']:.0f}")


if __name__ == "__main__":
    main()
