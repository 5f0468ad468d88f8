"""Benchmark: personal predictions checked on virtual patients whose parameters are known.

Each virtual patient gets covariates and baseline glabellar grades (like trial volunteers) and
*true* random effects drawn from the population model (:func:`neuromod.trials.population.draw_effects`,
baseline depths included), is treated with Botox 20 U in the glabella, and is rated by the
trials' raters (:func:`neuromod.trials.population.investigator_grades`, with the expectation
effect) -- so the model is correctly specified and any shortfall is the method's.

* two thirds ("early"): one treatment, rated at days 14 and 30; predicted from there on;
* one third ("cycle"): rated at days 14, 30, 60, 90, 120, 150 of a first cycle, re-treated on
  day 180, rated 14 and 30 days later; predicted for the second cycle.

For each patient: the personal prediction (observations) and the population's (the same
history without observations, :func:`neuromod.trials.personal.personalize`), compared with what
the patient then shows:

1. coverage of the 90 % predictive intervals of the later investigator grades (60, 90, 120,
   150 and 180 days after the last treatment; target 85-95 %). Grades are integers, so the
   interval is judged by the randomized PIT (Czado, Gneiting & Held 2009): an observed grade g
   with predictive CDF F counts with the share of [F(g-1), F(g)] inside [0.05, 0.95]; the
   plain check "g within the 5-95 % quantiles" (conservative for integers) is printed too;
2. error of the median expected grade at contraction 120 days after the last treatment, and of
   the median wear-off day (the day half of the best improvement is lost), personal against
   population, against the patient's true noiseless course;
3. recovery of the known sensitivity (half-block scale) and light-chain persistence: RMSE of
   the log posterior median against the truth with no observations, with days 14 + 30, and
   after a whole cycle;
4. time per patient (the personal prediction, this machine's cores) and per API call
   (:data:`neuromod.trials.personal.API_PARTICLES` twins);
5. method: the same "cycle" histories by plain importance sampling (the SMC fallback switched
   off), to show why the fallback is there.

Last line: ``RESULT coverage90=... day120_mae_personal=... day120_mae_population=...
wearoff_mae_personal=... wearoff_mae_population=... s_per_patient=...``.

    .venv/bin/python benchmarks/personal.py [--quick] [--patients N] [--particles N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from neuromod.model.scores import expected_score
from neuromod.model.simulate import area_landmarks
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.history import parse_history
from neuromod.trials.personal import API_PARTICLES, DEFAULT_PARTICLES, personalize, twin_course
from neuromod.trials.population import cohort_from_effects, draw_effects, investigator_grades

PLAN = {"product": "botox", "areas": {"glabella": 20}}
EARLY_VISITS = [14, 30]
CYCLE_VISITS = [14, 30, 60, 90, 120, 150]
RETREAT_DAY = 180
IS_COMPARISON_PATIENTS = 75  # the first 25 "cycle" patients are also run by plain importance sampling
LATER = [60, 90, 120, 150, 180]  # days after the last treatment, predicted and then seen
DAYS_AHEAD = 240


def draw_patient(rng: np.random.Generator) -> dict:
    """Covariates and baseline grades of a trial-like volunteer (moderate or severe lines)."""
    return {"age": int(rng.integers(30, 66)), "sex": "female" if rng.random() < 0.87 else "male",
            "smoking": str(rng.choice(["never", "former", "current"], p=[0.65, 0.2, 0.15])),
            "sun_exposure": str(rng.choice(["low", "moderate", "high"], p=[0.3, 0.5, 0.2])),
            "baseline": {"glabella": {"rest": int(rng.choice([0, 1, 2], p=[0.3, 0.5, 0.2])),
                                      "contraction": int(rng.choice([2, 3]))}}}


def expectation(day_since: np.ndarray, params) -> np.ndarray:
    pop = params.population
    return 1.0 - pop.expectation_bias * np.exp(-np.asarray(day_since, dtype=float) / pop.expectation_days)


def make_case(index: int, cycle: bool, params, face_map) -> dict:
    """One virtual patient: history with observations, the truth's later grades and landmarks."""
    rng = np.random.default_rng([2026, index])
    patient = draw_patient(rng)
    treatments = [{"day": 0, "plan": PLAN}] + ([{"day": RETREAT_DAY, "plan": PLAN}] if cycle else [])
    last = treatments[-1]["day"]
    horizon = last + DAYS_AHEAD
    bare = parse_history({"patient": patient, "treatments": treatments})
    effects = draw_effects(1, len(face_map.areas), rng, skin=True)
    truth = cohort_from_effects(bare.patient, effects, face_map.areas, params)
    course = twin_course(bare, truth, horizon, params, face_map)
    depth = course.contraction_mm[0, 0]
    visits = ([(d, d) for d in CYCLE_VISITS] + [(RETREAT_DAY + d, d) for d in EARLY_VISITS]) if cycle else \
        [(d, d) for d in EARLY_VISITS]
    days = np.array([v for v, _ in visits])
    since = np.array([s for _, s in visits])
    rated = investigator_grades(depth[days] * expectation(since, params), rng, params)
    rated_rest = investigator_grades(course.rest_mm[0, 0][days] * expectation(since, params), rng, params)
    observations = [{"day": int(d), "area": "glabella", "fws_contraction": int(g), "fws_rest": int(r)}
                    for d, g, r in zip(days, rated, rated_rest)]
    later_days = last + np.array(LATER)
    later = investigator_grades(depth[later_days] * expectation(np.array(LATER), params), rng, params)
    fws = expected_score(course.contraction_mm[0, 0], params.scores)
    window = slice(last, horizon + 1)
    wear = area_landmarks(course.days[window], fws[window], course.strength[0, 0, window], params.scores)[2]
    return {
        "document": {"patient": patient, "treatments": treatments, "observations": observations},
        "cycle": cycle, "last": last, "horizon": horizon,
        "later_days": later_days, "later_grades": later,
        "true_day120": float(fws[last + 120]), "true_wear_off": float(wear) if wear is not None else float(horizon),
        "true_log_half_block": float(np.log(truth.patients.half_block_scale[0, 0])),
        "true_log_light_chain": float(np.log(truth.patients.light_chain_decay_scale[0, 0])),
    }


def pit_coverage(probabilities: np.ndarray, grade: int, low: float = 0.05, high: float = 0.95) -> tuple[float, bool]:
    """(randomized-PIT credit, plain inclusion) of an observed integer grade in the central
    interval [low, high] of the predictive distribution ``probabilities`` over grades 0-3."""
    cdf = np.cumsum(probabilities / probabilities.sum())
    below = cdf[grade - 1] if grade > 0 else 0.0
    at = cdf[grade]
    width = max(at - below, 1e-12)
    credit = max(0.0, min(at, high) - max(below, low)) / width
    q_low = int(np.searchsorted(cdf, low))
    q_high = int(np.searchsorted(cdf, high))
    return credit, q_low <= grade <= q_high


def summarize_prediction(prediction, case) -> dict:
    area = prediction.areas["glabella"]
    k = 120  # days after the last treatment
    wear = area.wear_off_day["median"]
    params = {s.name: s for s in prediction.parameters}
    return {
        "day120": float(area.fws_contraction["median"][k]),
        "wear_off": float(wear) if wear is not None else float(case["horizon"]),
        "log_half_block": float(np.log(params["half_block_scale"].posterior_median)),
        "log_light_chain": float(np.log(params["light_chain_decay_scale"].posterior_median)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few dozen patients (under a minute)")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--particles", type=int, default=DEFAULT_PARTICLES)
    args = parser.parse_args()
    n_patients = args.patients or (12 if args.quick else 200)
    particles = args.particles if not args.quick else min(args.particles, 300)
    params, face_map = default_parameters(), load_face_map()
    print(f"personal predictions on {n_patients} virtual patients with known parameters, {particles} twins each "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    # warm-up: compile the engine before timing
    warm = make_case(10**6, False, params, face_map)
    personalize(parse_history(warm["document"]), DAYS_AHEAD, particles=100, params=params, face_map=face_map)
    rows = []
    seconds, cpu_seconds = [], []
    for i in range(n_patients):
        case = make_case(i, cycle=(i % 3 == 2), params=params, face_map=face_map)
        history = parse_history(case["document"])
        start, cpu_start = time.perf_counter(), time.process_time()
        personal = personalize(history, DAYS_AHEAD, particles=particles, seed=i, params=params, face_map=face_map)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        population = personalize(parse_history({**case["document"], "observations": []}), DAYS_AHEAD,
                                 particles=particles, seed=i, params=params, face_map=face_map)
        row = {"case": case, "personal": summarize_prediction(personal, case),
               "population": summarize_prediction(population, case), "method": personal.diagnostic.method,
               "prior_ess": personal.diagnostic.prior_ess, "coverage": [], "plain": [], "coverage_pop": []}
        for day, grade in zip(case["later_days"], case["later_grades"]):
            for key, prediction in (("coverage", personal), ("coverage_pop", population)):
                credit, plain = pit_coverage(prediction.rating_probabilities(int(day), "glabella"), int(grade))
                row[key].append(credit)
                if key == "coverage":
                    row["plain"].append(plain)
        if case["cycle"]:
            first_two = {**case["document"], "observations": case["document"]["observations"][:2],
                         "treatments": case["document"]["treatments"]}
            row["early_only"] = summarize_prediction(
                personalize(parse_history(first_two), DAYS_AHEAD, particles=particles, seed=i, params=params,
                            face_map=face_map), case)
        if case["cycle"] and i < IS_COMPARISON_PATIENTS:
            is_only = personalize(history, DAYS_AHEAD, particles=particles, seed=i, params=params, face_map=face_map,
                                  min_ess_fraction=0.0)
            row["is_only"] = summarize_prediction(is_only, case)
            row["is_only_coverage"] = [pit_coverage(is_only.rating_probabilities(int(d), "glabella"), int(g))[0]
                                       for d, g in zip(case["later_days"], case["later_grades"])]
        rows.append(row)
        if (i + 1) % max(1, n_patients // 8) == 0:
            print(f"  {i + 1}/{n_patients} patients, {np.mean(seconds):.2f} s per personal prediction", flush=True)

    def mae(key: str, what: str, subset=None) -> float:
        chosen = [r for r in rows if subset is None or subset(r)]
        target = {"day120": "true_day120", "wear_off": "true_wear_off"}[what]
        return float(np.mean([abs(r[key][what] - r["case"][target]) for r in chosen if key in r]))

    def rmse(key: str, what: str, subset=None) -> float:
        chosen = [r for r in rows if (subset is None or subset(r)) and key in r]
        return float(np.sqrt(np.mean([(r[key][what] - r["case"]["true_" + what]) ** 2 for r in chosen])))

    coverage = float(np.mean([c for r in rows for c in r["coverage"]]))
    plain = float(np.mean([c for r in rows for c in r["plain"]]))
    coverage_pop = float(np.mean([c for r in rows for c in r["coverage_pop"]]))
    cycle = [r for r in rows if r["case"]["cycle"]]
    early = [r for r in rows if not r["case"]["cycle"]]
    print("\n1. 90 % predictive intervals of later investigator grades (days 60-180 after the last treatment)")
    print(f"   coverage (randomized PIT) personal {coverage:.3f}, population {coverage_pop:.3f}; "
          f"plain quantile check {plain:.3f} (target 0.85-0.95)")
    for name, group in (("early (days 14+30)", early), ("cycle", cycle)):
        if group:
            print(f"   {name}: {np.mean([c for r in group for c in r['coverage']]):.3f} over "
                  f"{sum(len(r['coverage']) for r in group)} grades")
    print("\n2. errors against the true course (mean absolute)")
    print(f"   {'':<22} {'personal':>9} {'population':>11} {'reduction':>10}")
    for what, label in (("day120", "FWS at day 120"), ("wear_off", "wear-off day")):
        for name, subset in (("all", None), ("early", lambda r: not r["case"]["cycle"]),
                             ("cycle", lambda r: r["case"]["cycle"])):
            p, q = mae("personal", what, subset), mae("population", what, subset)
            print(f"   {label + ' (' + name + ')':<22} {p:>9.3f} {q:>11.3f} {1 - p / q:>9.0%}")
    print("\n3. recovery of known parameters: RMSE of log posterior median (cycle patients)")
    print(f"   {'observations':<28} {'half-block':>10} {'light chain':>12}")
    for key, label in (("population", "none (population)"), ("early_only", "days 14 + 30"),
                       ("personal", "whole cycle + 14 + 30")):
        print(f"   {label:<28} {rmse(key, 'log_half_block', lambda r: r['case']['cycle']):>10.3f} "
              f"{rmse(key, 'log_light_chain', lambda r: r['case']['cycle']):>12.3f}")
    print(f"   early patients, days 14 + 30: half-block {rmse('personal', 'log_half_block', lambda r: not r['case']['cycle']):.3f}"
          f" vs {rmse('population', 'log_half_block', lambda r: not r['case']['cycle']):.3f} with none")
    methods = {m: sum(r["method"] == m for r in rows) for m in sorted({r["method"] for r in rows})}
    print(f"\n4. method used: {methods}; median prior ESS {np.median([r['prior_ess'] for r in rows]):.0f} of {particles}")
    if cycle:
        compared = [r for r in cycle if "is_only" in r]
        print(f"   {len(compared)} cycle patients by plain importance sampling: coverage "
              f"{np.mean([c for r in compared for c in r['is_only_coverage']]):.3f} (with the fallback "
              f"{np.mean([c for r in compared for c in r['coverage']]):.3f}); wear-off MAE "
              f"{mae('is_only', 'wear_off', lambda r: 'is_only' in r):.1f} d (with the fallback "
              f"{mae('personal', 'wear_off', lambda r: 'is_only' in r):.1f} d)")
    api_history = parse_history(early[0]["case"]["document"] if early else rows[0]["case"]["document"])
    api, api_cpu = [], []
    for seed in range(5):
        start, cpu_start = time.perf_counter(), time.process_time()
        personalize(api_history, 180, particles=API_PARTICLES, seed=seed, params=params, face_map=face_map)
        api.append(time.perf_counter() - start)
        api_cpu.append(time.process_time() - cpu_start)
    s_per_patient = float(np.mean(seconds))
    print(f"\n5. time: {s_per_patient:.2f} s per personal prediction (median {np.median(seconds):.2f}, "
          f"max {np.max(seconds):.2f}; target < 2 s), {np.mean(cpu_seconds):.2f} CPU s (both cores' time: on an "
          f"otherwise idle 2-core machine the wall time is at most this); API call ({API_PARTICLES} twins, days 14+30): "
          f"{np.median(api):.2f} s median, {np.median(api_cpu):.2f} CPU s (target < 0.5 s); load average {os.getloadavg()[0]:.1f}")
    print(f"RESULT coverage90={coverage:.3f} day120_mae_personal={mae('personal', 'day120'):.3f} "
          f"day120_mae_population={mae('population', 'day120'):.3f} "
          f"wearoff_mae_personal={mae('personal', 'wear_off'):.1f} "
          f"wearoff_mae_population={mae('population', 'wear_off'):.1f} s_per_patient={s_per_patient:.2f} "
          f"s_per_api_call={np.median(api):.2f}")


if __name__ == "__main__":
    main()
