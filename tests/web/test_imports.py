"""Carrier uploads through the API and the console: reports, refusals, isolation, coverage."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select
from webtools import ControlJobs, People, assert_error, login, page_csrf, upload

from broadcast import keys
from broadcast.db import Database
from broadcast.models import AuditEntry, Carrier, Import, ImportKind, ImportStatus
from broadcast.settings import Settings
from subscriber_import import records
from workers import jobs
from workers import runtime as rt_mod
from workers.processes import ImportWorker
from workers.runtime import build_runtime

LIST_CSV = (
    "so_thue_bao,ma_huyen\n0961234501,18073\n0961234502,18073\n84961234503,18100\nabc,18073\n"
)
COUNTS_CSV = "ma_huyen,so_luong,ngay\n18073,120000,2026-01-15\n18100,45000,2026-01-15\n"


def run_imports(client: FlaskClient, settings: Settings, level: str) -> None:
    """The imports worker of `loa worker --imports`, in burst mode, in this process."""
    runtime = build_runtime(settings, client.application.extensions["loa"].database)
    rt_mod.install(runtime)
    try:
        ImportWorker(runtime).work(burst=True, logging_level=level)
    finally:
        rt_mod.install(None)
        runtime.redis.close()


def test_carrier_uploads_its_list_and_reads_the_report(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    response = upload(client, people, "viettel", "viettel", LIST_CSV, token="tok12345abc")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "succeeded" and body["report"]["accepted"] == 3
    assert sum(body["report"]["rejected"].values()) == 1
    assert "rejects_csv" not in body["report"]
    progress = client.get("/api/v1/imports/progress/tok12345abc", headers=people.auth("viettel"))
    assert progress.get_json()["state"] == "done"
    listed = client.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))
    assert [i["id"] for i in listed.get_json()] == [body["id"]]
    counts = upload(
        client, people, "viettel", "viettel", COUNTS_CSV, kind="counts", name="counts.csv"
    )
    assert counts.status_code == 201, counts.get_json()
    cover = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("drafter"))
    rows = {r["area_code"]: r for r in cover.get_json()}
    assert rows["18073"]["accepted"] == 2 and rows["18073"]["reported"] == 120000


def test_a_carrier_never_sees_another_carriers_data(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    mine = upload(client, people, "viettel", "viettel", LIST_CSV).get_json()
    other = people.auth("mobifone")
    assert_error(client.get(f"/api/v1/imports/{mine['id']}", headers=other), 404)
    assert_error(client.get("/api/v1/carriers/viettel/imports", headers=other), 404)
    assert_error(client.get("/api/v1/carriers/viettel/coverage", headers=other), 404)
    assert_error(upload(client, people, "mobifone", "viettel", LIST_CSV), 404)
    assert_error(
        client.get("/api/v1/carriers/viettel/imports", headers=people.auth("drafter")), 403
    )
    assert_error(upload(client, people, "drafter", "viettel", LIST_CSV), 403)
    # the console says the same
    login(client, "mobifone")
    assert client.get(f"/carriers/imports/{mine['id']}").status_code == 404
    assert client.get("/carriers/viettel").status_code == 404


def test_refused_files_say_why_and_change_nothing(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    assert_error(upload(client, people, "viettel", "viettel", LIST_CSV, kind="everything"), 422)
    missing = client.post(
        "/api/v1/carriers/viettel/imports",
        data={"kind": "list"},
        headers=people.auth("viettel"),
        content_type="multipart/form-data",
    )
    assert "file" in assert_error(missing, 422)["details"]
    bad = upload(client, people, "viettel", "viettel", "name,age\nAn,3\n")
    error = assert_error(bad, 422)
    assert error["details"]["import_id"]
    record = client.get(
        f"/api/v1/imports/{error['details']['import_id']}", headers=people.auth("viettel")
    ).get_json()
    assert record["status"] == "rejected"
    cover = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("viettel"))
    assert all(r["accepted"] == 0 for r in cover.get_json())
    assert_error(upload(client, people, "viettel", "nowhere", LIST_CSV), 404)
    assert_error(client.get("/api/v1/imports/progress/x", headers=people.auth("viettel")), 404)
    assert_error(upload(client, people, "viettel", "viettel", LIST_CSV, token="bad token!"), 422)


def _follow_upload(client: FlaskClient, status_page: str) -> Any:
    """Reload the upload's status page (as its refresh does) until it leads elsewhere."""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        response = client.get(status_page)
        if response.status_code != 200:
            return response
        time.sleep(0.1)
    raise AssertionError(f"{status_page} still running after 20 s")


def test_console_upload_runs_in_the_background_then_shows_the_report(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    login(client, "viettel")
    page = client.get("/carriers/", follow_redirects=True)
    assert "upload-form" in page.get_data(as_text=True)
    token = page_csrf(client, "/carriers/viettel")
    response = client.post(
        "/carriers/viettel/upload",
        data={
            "csrf_token": token,
            "kind": "list",
            "file": (io.BytesIO(LIST_CSV.encode()), "ds.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    status_page = response.headers["Location"]
    assert status_page.startswith("/carriers/viettel/uploads/")
    done = _follow_upload(client, status_page)
    assert done.status_code == 302 and "/carriers/imports/" in done.headers["Location"]
    report = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "ds.csv" in report and "succeeded" in report and 'id="rejects-download"' in report
    # the page a script-less browser sees while it waits, and another carrier's view of it
    login(client, "mobifone")
    assert client.get(status_page).status_code == 404


def test_upload_waits_for_no_worker_and_answers_202(
    client: FlaskClient, people: People, settings: Settings, redis_client: Any
) -> None:
    response = upload(client, people, "viettel", "viettel", LIST_CSV, token="slowtoken1", wait=0)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["state"] == "queued" and body["token"] == "slowtoken1"
    assert response.headers["Location"] == body["status_url"]
    # on the imports queue by dotted path, with paths and ids only; the file under uploads/
    assert Queue(keys.CONTROL_QUEUE, connection=redis_client).jobs == []
    jobs = Queue(keys.IMPORT_QUEUE, connection=redis_client).jobs
    assert [j.func_name for j in jobs] == [keys.IMPORT_JOB]
    args = jobs[0].kwargs
    assert args["carrier_code"] == "viettel" and args["kind"] == "list"
    assert args["filename"] == "list.csv" and args["user_id"] == people.ids["viettel"]
    saved = Path(args["path"])
    assert saved.parent == settings.instance_path / "uploads" and saved.read_text() == LIST_CSV
    assert len(saved.name) == 32  # a uuid, never the client's file name
    polled = client.get(body["status_url"], headers=people.auth("viettel")).get_json()
    assert polled["state"] == "queued"
    login(client, "viettel")
    waiting = client.get(f"/carriers/viettel/uploads/{body['token']}")
    assert "loa worker --imports" in waiting.get_data(as_text=True)
    # another carrier never sees it
    assert_error(client.get(body["status_url"], headers=people.auth("mobifone")), 404)
    # a worker runs it
    run_imports(client, settings, "WARNING")
    done = client.get(body["status_url"], headers=people.auth("viettel")).get_json()
    assert done["state"] == "done" and done["rows"] == 4 and done["import_id"]
    assert not saved.exists()
    record = client.get(f"/api/v1/imports/{done['import_id']}", headers=people.auth("viettel"))
    assert record.get_json()["report"]["accepted"] == 3


def test_an_import_that_breaks_says_failed(
    client: FlaskClient, people: People, settings: Settings, redis_client: Any
) -> None:
    body = upload(client, people, "viettel", "viettel", LIST_CSV, wait=0).get_json()
    job = Queue(keys.IMPORT_QUEUE, connection=redis_client).jobs[0]
    Path(job.kwargs["path"]).unlink()  # the saved file is gone before the worker starts
    run_imports(client, settings, "CRITICAL")
    state = client.get(body["status_url"], headers=people.auth("viettel")).get_json()
    assert state["state"] == "failed", state
    assert state["message"]
    login(client, "viettel")
    shown = client.get(f"/carriers/viettel/uploads/{body['token']}", follow_redirects=True)
    assert state["message"][:40] in shown.get_data(as_text=True)


def test_rejected_rows_download(
    client: FlaskClient, people: People, control_jobs: ControlJobs, seeded_database: Database
) -> None:
    mine = upload(client, people, "viettel", "viettel", LIST_CSV + "=1+2,18073\n").get_json()
    assert mine["has_rejects"] is True
    url = f"/api/v1/imports/{mine['id']}/rejects.csv"
    for who in ("viettel", "admin", "auditor"):
        with client.get(url, headers=people.auth(who)) as response:
            assert response.status_code == 200, who
            assert response.mimetype == "text/csv"
            assert "attachment" in response.headers["Content-Disposition"]
            text = response.get_data().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:2] == ["line", "value"] or "value" in rows[0]
        values = {r[rows[0].index("value")]: r[rows[0].index("reason")] for r in rows[1:]}
        assert values["abc"] == "invalid"
        assert "=1+2" not in values and any(v.endswith("=1+2") for v in values)  # defused
    assert_error(client.get(url, headers=people.auth("mobifone")), 404)
    assert_error(client.get(url, headers=people.auth("drafter")), 403)
    assert_error(client.get("/api/v1/imports/999/rejects.csv", headers=people.auth("admin")), 404)
    refused = upload(client, people, "viettel", "viettel", "name,age\nAn,3\n")
    refused_id = assert_error(refused, 422)["details"]["import_id"]
    none = client.get(f"/api/v1/imports/{refused_id}/rejects.csv", headers=people.auth("viettel"))
    assert "không có tệp các dòng bị loại" in assert_error(none, 404)["message"]
    # the console link, for the owner only
    login(client, "viettel")
    page = client.get(f"/carriers/imports/{mine['id']}").get_data(as_text=True)
    assert 'id="rejects-download"' in page
    with client.get(f"/carriers/imports/{mine['id']}/rejects.csv") as response:
        assert response.status_code == 200 and b"abc" in response.data
    login(client, "mobifone")
    assert client.get(f"/carriers/imports/{mine['id']}/rejects.csv").status_code == 404
    with seeded_database.session() as s:
        downloads = s.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "import.rejects_download")
        ).all()
    assert sorted(downloads) == ["admin", "auditor", "viettel", "viettel"]


def test_old_and_unknown_area_labels_are_shown_in_vietnamese(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    text = (
        "so_thue_bao,ma_xa\n0961234501,Xã Thạch Đài\n0961234502,Huyện Can Lộc\n0961234503,Xóm Lạ\n"
    )
    body = upload(client, people, "viettel", "viettel", text).get_json()
    assert body["report"]["accepted"] == 3 and body["report"]["mapped"] == 1
    assert body["report"]["warnings"] == {"old_district": 1, "unknown_area": 1}
    login(client, "viettel")
    page = client.get(f"/carriers/imports/{body['id']}").get_data(as_text=True)
    assert "Nhãn cũ (trước 1/7/2025) đã chuyển sang xã, phường mới" in page
    assert "Giữ ở cấp tỉnh: huyện cũ" in page and "Huyện Can Lộc" in page
    assert "Giữ lại, không rõ địa bàn: nhãn không nhận ra" in page and "Xóm Lạ" in page
    coverage = client.get("/carriers/viettel").get_data(as_text=True)
    assert "Phường" in coverage and "Không rõ địa bàn" in coverage
    assert 'id="coverage-search"' in coverage


def test_an_import_left_running_by_a_killed_worker_fails_when_the_control_worker_starts(
    request: Any,
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    tmp_path: Path,
) -> None:
    # What an imports worker killed mid-import (kill -9, power loss) leaves behind: its row
    # `running` since before imports.max_seconds, its uploaded file, and the link from the
    # row to the uploader's progress (workers.import_jobs.run_import).
    started = datetime.now(UTC) - timedelta(seconds=settings.imports.max_seconds + 60)
    with seeded_database.session() as session:
        carrier = session.scalar(select(Carrier).where(Carrier.code == "viettel"))
        row = Import(
            carrier_id=carrier.id,
            kind=ImportKind.LIST,
            status=ImportStatus.RUNNING,
            filename="list.csv",
            created_by=people.ids["viettel"],
            started_at=started,
        )
        session.add(row)
        session.flush()
        import_id = row.id
    uploaded = tmp_path / "killed-upload.csv"
    uploaded.write_text(LIST_CSV)
    link = {"token": "killedworker1", "path": str(uploaded), "carrier": "viettel",
            "filename": "list.csv"}  # fmt: skip
    redis = client.application.extensions["loa"].redis
    redis.hset(keys.IMPORTS_RUNNING_KEY, str(import_id), json.dumps(link))
    running = {"carrier": "viettel", "filename": "list.csv", "state": "running", "rows": 10}
    redis.set(keys.import_progress_key("killedworker1"), json.dumps(running))
    progress = "/api/v1/imports/progress/killedworker1"
    assert client.get(progress, headers=people.auth("viettel")).get_json()["state"] == "running"

    # `loa worker --control` starts: its first reconcile tells the uploader.
    request.getfixturevalue("control_jobs")
    end = time.monotonic() + 20
    while (state := client.get(progress, headers=people.auth("viettel")).get_json())[
        "state"
    ] == "running":
        assert time.monotonic() < end, "the import still shows running 20 s after the start"
        time.sleep(0.1)
    assert state["state"] == "failed" and state["code"] == "import_stopped", state
    record = client.get(f"/api/v1/imports/{import_id}", headers=people.auth("viettel"))
    assert record.get_json()["status"] == "failed"
    assert not uploaded.exists()


def reconcile_now(client: FlaskClient, settings: Settings, **imports: Any) -> dict[str, int]:
    """One pass of reconcile (as `loa reconcile` and the control worker run it), with some
    imports settings changed (a grace of 0: the uploads of these tests are seconds old)."""
    changed = replace(settings, imports=replace(settings.imports, **imports))
    runtime = build_runtime(changed, client.application.extensions["loa"].database)
    rt_mod.install(runtime)
    try:
        return jobs.reconcile()
    finally:
        rt_mod.install(None)
        runtime.redis.close()


def _uploads_folder(settings: Settings) -> list[str]:
    folder = settings.instance_path / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("lost", ["redis flushed", "taken by a dead worker"])
def test_an_accepted_upload_whose_job_was_lost_is_imported_once(
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    redis_client: Any,
    lost: str,
) -> None:
    """202 means the file will be imported. Its job lives in Redis: a flush or restart before
    an imports worker ran it, or a worker killed between taking it off the queue and starting
    it, lost it, and the upload stayed `queued` for ever with its file on disk. Reconcile
    enqueues it again from the job file beside the upload; a second copy of the job (the old
    one still in a queue somewhere) finds the upload taken and imports nothing twice."""
    body = upload(client, people, "viettel", "viettel", LIST_CSV, token="lostjob1234", wait=0)
    assert body.status_code == 202, body.get_json()
    imports = Queue(keys.IMPORT_QUEUE, connection=redis_client)
    (job_id,) = imports.get_job_ids()
    # Just saved: within the grace, reconcile leaves it to the job being enqueued.
    assert reconcile_now(client, settings)["imports_requeued"] == 0
    if lost == "redis flushed":
        redis_client.flushdb()
    else:
        assert redis_client.lpop(imports.key) == job_id.encode()  # what the dead worker did
    assert imports.get_job_ids() == []
    # Waiting in its queue is not lost: only the lost job is enqueued, once.
    report = reconcile_now(client, settings, abandoned_grace_seconds=0)
    assert (report["imports_requeued"], report["imports_lost"]) == (1, 0), report
    assert reconcile_now(client, settings, abandoned_grace_seconds=0)["imports_requeued"] == 0
    assert imports.get_job_ids() == [job_id]
    polled = client.get(body.get_json()["status_url"], headers=people.auth("viettel"))
    assert polled.get_json()["state"] == "queued"
    # The old copy of the job, run too (a worker that was only slow): it finds the upload
    # taken or gone and leaves the progress alone.
    imports.enqueue(keys.IMPORT_JOB, kwargs=imports.fetch_job(job_id).kwargs)
    run_imports(client, settings, "WARNING")
    done = client.get(body.get_json()["status_url"], headers=people.auth("viettel")).get_json()
    assert done["state"] == "done" and done["rows"] == 4, done
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Import)) == 1
    assert _uploads_folder(settings) == []  # the upload and its job file, gone
    assert reconcile_now(client, settings, abandoned_grace_seconds=0)["imports_requeued"] == 0


def test_an_upload_taken_by_a_worker_that_died_before_importing_is_given_up_and_said(
    client: FlaskClient, people: People, settings: Settings, redis_client: Any
) -> None:
    """A worker killed between taking the upload (run_import's first step) and starting the
    import leaves no Import row for reconcile's fail_abandoned_imports. Once older than any
    import may run, the upload is removed and its uploader told to send it again."""
    body = upload(client, people, "viettel", "viettel", LIST_CSV, wait=0).get_json()
    (job,) = Queue(keys.IMPORT_QUEUE, connection=redis_client).jobs
    redis_client.flushdb()
    assert records.take_upload(Path(job.kwargs["path"])) is not None  # the dead run's step
    # Not older than imports.max_seconds + the grace yet: it may still be running.
    report = reconcile_now(client, settings, abandoned_grace_seconds=0)
    assert (report["imports_requeued"], report["imports_lost"]) == (0, 0), report
    assert len(_uploads_folder(settings)) == 2
    time.sleep(0.3)
    report = reconcile_now(client, settings, abandoned_grace_seconds=0, max_seconds=0.2)
    assert (report["imports_requeued"], report["imports_lost"]) == (0, 1), report
    state = client.get(body["status_url"], headers=people.auth("viettel")).get_json()
    assert state["state"] == "failed" and state["code"] == "import_stopped", state
    assert _uploads_folder(settings) == []
