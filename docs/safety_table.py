"""Print the ptosis table of docs/calibration.md (Safety): closed-form risks of the typical patient
under the installed fit (`neuromod simulate` of each plan, its `safety` block). Run from the repo
root: `.venv/bin/python docs/safety_table.py`."""
from neuromod import parse_plan, simulate

def risk(doc):
    r = simulate(parse_plan(doc), days=60).safety.risk
    return 100 * r["brow_ptosis"], 100 * r["eyelid_ptosis"]

rows = []
b = [risk({"product": "botox", "areas": {"glabella": u}}) for u in (10, 20, 40, 80)]
rows.append(("Botox glabella 10 / 20 / 40 / 80 U", " / ".join(f"{x[0]:.2f}" for x in b) + " %", " / ".join(f"{x[1]:.2f}" for x in b) + " %"))
d = [risk({"product": "dysport", "areas": {"glabella": u}}) for u in (50, 125)]
rows.append(("Dysport glabella 50 / 125 U", " / ".join(f"{x[0]:.2f}" for x in d) + " %", " / ".join(f"{x[1]:.2f}" for x in d) + " %"))
o = [risk({"product": p, "areas": {"glabella": u}}) for p, u in (("jeuveau", 20), ("xeomin", 20), ("daxxify", 40))]
rows.append(("Jeuveau 20 U, Xeomin 20 U, Daxxify 40 U", ", ".join(f"{x[0]:.2f}" for x in o) + " %", ", ".join(f"{x[1]:.2f}" for x in o) + " %"))
f = [risk({"product": "botox", "areas": {"forehead": u, "glabella": 20}}) for u in (10, 20)]
rows.append(("Botox forehead 10 / 20 U + glabella 20 U", " / ".join(f"{x[0]:.2f}" for x in f) + " %", " / ".join(f"{x[1]:.2f}" for x in f) + " %"))
a = [risk({"product": "botox", "areas": {"forehead": u}}) for u in (10, 20)]
rows.append(("Botox forehead 10 / 20 U alone (off label)", " / ".join(f"{x[0]:.2f}" for x in a) + " %", " / ".join(f"{x[1]:.2f}" for x in a) + " %"))
print("| plan | brow ptosis | eyelid ptosis |\n|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
