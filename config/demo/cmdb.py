"""Demo CMDB: the syndicate's real application catalogue and usage matrix, plus a generated
infrastructure consistent with the totals of the 2021 report (docs/cmdb.md, "Demo data").

Real (exact, from data/applications.csv and data/application_usage.csv): the 74
applications with domain, function, product and vendor, and which member uses which,
with the confidence of the matrix column mapping.

Generated (deterministic, seeded; the report gives only totals): two sites (the main
server room and the redundant PA4 data centre), 20 hyperconverged hosts in three clusters
plus two standalone hosts, 331 virtual servers of which 87 test, databases totalling
2.3 TB, every production application on its servers and database, GDPR processing
attributes by domain, host capacities and server sizes, and a few deliberate weaknesses
(see docs/cmdb.md).

Everything goes through the CMDB import (``cmdb.imports``) with ``only_create``, so a
second run creates nothing and changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from cmdb.imports import import_table
from cmdb.tabular import Row, TableFile
from config.auth import SYSTEM

__all__ = ["build_rows", "load"]

SEED = 94_2021
MAIN_SITE = "siim94"
PA4_SITE = "pa4"
PROD_SERVERS = 244
TEST_SERVERS = 87
DATABASE_GB = 2300.0

# Applications run on the standalone legacy host (a deliberate single point of failure).
LEGACY_DOMAINS = ("Logement", "Offices HLM")
# Software as a service: nothing of theirs runs in the syndicate's rooms.
SAAS = ("doctolib-rendez-vous", "doctolib-teleconsultations")

GDPR_BY_DOMAIN: dict[str, dict[str, Any]] = {
    "Action sociale": {
        "purpose": "Instruction et suivi des aides sociales et des services à domicile",
        "data_categories": ["identité", "situation familiale", "ressources", "santé"],
        "data_subjects": ["usagers du CCAS", "aidants"],
        "sensitive": True,
        "retention": "5 ans après la dernière aide",
        "legal_basis": "public_task",
    },
    "RH": {
        "purpose": "Gestion administrative du personnel : paie, carrières, absences",
        "data_categories": ["identité", "NIR", "coordonnées bancaires", "carrière"],
        "data_subjects": ["agents", "candidats"],
        "sensitive": True,
        "retention": "Durée de la carrière + 5 ans",
        "legal_basis": "legal_obligation",
    },
    "Santé": {
        "purpose": "Dossier médical et rendez-vous des centres municipaux de santé",
        "data_categories": ["identité", "données de santé", "NIR"],
        "data_subjects": ["patients"],
        "sensitive": True,
        "retention": "20 ans après le dernier passage",
        "legal_basis": "public_task",
    },
    "Affaires civiles et citoyennes": {
        "purpose": "État civil, élections, recensement et cimetières",
        "data_categories": ["identité", "filiation", "adresse"],
        "data_subjects": ["administrés", "électeurs"],
        "sensitive": False,
        "retention": "Selon le code général des collectivités territoriales",
        "legal_basis": "legal_obligation",
    },
    "Familles": {
        "purpose": "Inscriptions et facturation petite enfance, scolaire et périscolaire",
        "data_categories": ["identité", "quotient familial", "coordonnées bancaires"],
        "data_subjects": ["familles", "enfants"],
        "sensitive": False,
        "retention": "3 ans après la dernière facture",
        "legal_basis": "public_task",
    },
    "Logement": {
        "purpose": "Demandes de logement social et quittancement",
        "data_categories": ["identité", "ressources", "situation familiale"],
        "data_subjects": ["demandeurs", "locataires"],
        "sensitive": False,
        "retention": "Durée de la demande + 1 an",
        "legal_basis": "legal_obligation",
    },
    "Offices HLM": {
        "purpose": "Gestion locative du parc social",
        "data_categories": ["identité", "ressources", "coordonnées bancaires"],
        "data_subjects": ["locataires"],
        "sensitive": False,
        "retention": "Durée du bail + 5 ans",
        "legal_basis": "contract",
    },
}

DB_ENGINES = ("oracle", "sqlserver", "postgresql")
DB_SERVERS = {"oracle": 8, "sqlserver": 10, "postgresql": 8}


def _ci(key: str, name: str, **attrs: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"record": "ci", "key": key, "name": name}
    for attr, value in attrs.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                row[f"attr.{attr}.{sub}"] = subvalue
        else:
            row[f"attr.{attr}"] = value
    return row


def _rel(source: str, rel_type: str, target: str) -> dict[str, Any]:
    return {"record": "relation", "key": source, "relation": rel_type, "target": target}


def _split_total(rnd: random.Random, total: float, parts: int) -> list[float]:
    """``parts`` sizes (GB, one decimal) that add up to ``total`` exactly."""
    weights = [rnd.lognormvariate(0, 1.1) for _ in range(parts)]
    scale = total / sum(weights)
    sizes = [round(w * scale, 1) for w in weights]
    sizes[-1] = round(total - sum(sizes[:-1]), 1)
    return sizes


def _allocate(weights: dict[str, int], total: int, low: int, high: int) -> dict[str, int]:
    """Share ``total`` servers: ``low`` each, then one at a time to the application with
    the most weight per server so far (at most ``high``); ties by code."""
    count = {k: low for k in weights}
    for _ in range(total - low * len(weights)):
        best = min(
            (k for k in weights if count[k] < high), key=lambda k: (-weights[k] / count[k], k)
        )
        count[best] += 1
    return count


def build_rows(
    applications: list[dict[str, str]], usage: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Every import row of the demo CMDB (deterministic)."""
    rnd = random.Random(SEED)  # noqa: S311 - reproducible demo data, not secrets
    rows: list[dict[str, Any]] = []
    main, pa4 = f"site:{MAIN_SITE}", f"site:{PA4_SITE}"
    rows += [
        _ci(main, "Salle serveurs SIIM94 (site principal)", role="primary"),
        _ci(pa4, "Datacentre PA4 (site redondant)", role="secondary", city="Pantin"),
    ]
    # -- clusters and hosts: 20 physical servers ------------------------------------------
    clusters = [
        ("hci-prod", "Cluster hyperconvergé production (étendu sur deux sites)", 6),
        ("hci-test", "Cluster hyperconvergé test et recette", 3),
        ("hci-mgmt", "Cluster d'administration", 1),
    ]
    for code, name, min_healthy in clusters:
        rows.append(
            _ci(f"cluster:{code}", name, min_healthy=min_healthy, technology="hyperconverged")
        )
    hosts: list[tuple[str, str, str, int, int]] = []
    hosts += [
        (f"hv-prod-{i:02d}", "hci-prod", main if i <= 6 else pa4, 48, 768) for i in range(1, 13)
    ]
    hosts += [(f"hv-test-{i:02d}", "hci-test", main, 32, 512) for i in range(1, 5)]
    hosts += [(f"hv-mgmt-{i:02d}", "hci-mgmt", main, 24, 256) for i in range(1, 3)]
    for code, cluster, site, cores, memory in hosts:
        rows.append(
            _ci(
                f"host:{code}",
                code.upper(),
                vendor="HPE",
                model="ProLiant DL380 Gen10",
                cpu_cores=cores,
                memory_gb=memory,
            )
        )
        rows.append(_rel(f"host:{code}", "member_of", f"cluster:{cluster}"))
        rows.append(_rel(f"host:{code}", "located_in", site))
    for code, name in (
        ("phys-legacy-01", "Serveur physique historique (stockage local)"),
        ("phys-backup-01", "Serveur physique de sauvegarde"),
    ):
        rows.append(
            _ci(
                f"host:{code}",
                name,
                vendor="HPE",
                model="ProLiant DL360",
                cpu_cores=16,
                memory_gb=256,
            )
        )
        rows.append(_rel(f"host:{code}", "located_in", main))

    servers_prod = 0
    servers_test = 0

    def server(
        code: str,
        name: str,
        on: str,
        *,
        env: str = "production",
        role: str,
        vcpus: int,
        memory: int,
    ) -> str:
        nonlocal servers_prod, servers_test
        key = f"server:{code}"
        rows.append(
            _ci(
                key,
                name,
                environment=env,
                virtual=True,
                os=rnd.choice(OSES[role]),
                role=role,
                vcpus=vcpus,
                memory_gb=memory,
            )
        )
        rows.append(_rel(key, "runs_on", on))
        if env == "production":
            servers_prod += 1
        else:
            servers_test += 1
        return key

    def farm(code: str, name: str, members: list[str], min_healthy: int) -> str:
        key = f"cluster:{code}"
        rows.append(_ci(key, name, min_healthy=min_healthy, technology="farm"))
        rows.extend(_rel(m, "member_of", key) for m in members)
        return key

    prod, test, mgmt = "cluster:hci-prod", "cluster:hci-test", "cluster:hci-mgmt"
    legacy, backup = "host:phys-legacy-01", "host:phys-backup-01"
    # -- shared infrastructure servers and services ---------------------------------------
    dcs = [
        server(
            f"ad-dc-{i:02d}", f"Contrôleur de domaine {i}", prod, role="infra", vcpus=4, memory=16
        )
        for i in (1, 2)
    ]
    rows.append(_ci("service:annuaire", "Annuaire et authentification (Active Directory)"))
    rows.append(_rel("service:annuaire", "depends_on", farm("farm-ad", "Ferme AD", dcs, 1)))
    dns = [
        server(f"dns-{i:02d}", f"DNS {i}", prod, role="infra", vcpus=2, memory=4) for i in (1, 2)
    ]
    rows.append(_ci("service:dns", "Résolution de noms"))
    rows.append(_rel("service:dns", "depends_on", farm("farm-dns", "Ferme DNS", dns, 1)))
    files = [
        server(
            f"fichiers-{i:02d}", f"Serveur de fichiers {i}", prod, role="infra", vcpus=4, memory=32
        )
        for i in (1, 2)
    ]
    rows.append(_ci("service:fichiers", "Partages de fichiers"))
    rows.append(
        _rel("service:fichiers", "depends_on", farm("farm-fichiers", "Ferme fichiers", files, 1))
    )
    # Deliberate false redundancy: both print servers on the same standalone host.
    prints = [
        server(
            f"impression-{i:02d}",
            f"Serveur d'impression {i}",
            backup,
            role="infra",
            vcpus=2,
            memory=8,
        )
        for i in (1, 2)
    ]
    rows.append(_ci("service:impression", "Éditique et impression (61 500 pages/mois)"))
    rows.append(
        _rel(
            "service:impression",
            "depends_on",
            farm("farm-impression", "Ferme d'impression", prints, 1),
        )
    )
    backup_srv = server(
        "sauvegarde-01", "Sauvegarde (11,2 To/jour)", backup, role="infra", vcpus=8, memory=64
    )
    rows.append(_ci("service:sauvegarde", "Sauvegardes"))
    rows.append(_rel("service:sauvegarde", "depends_on", backup_srv))
    server("supervision-01", "Supervision", mgmt, role="infra", vcpus=4, memory=16)
    server("vcenter-01", "Gestion de la virtualisation", mgmt, role="infra", vcpus=4, memory=24)
    server("proxy-01", "Proxy sortant", prod, role="infra", vcpus=2, memory=8)
    server("smtp-01", "Relais de messagerie", prod, role="infra", vcpus=2, memory=4)
    rds = [
        server(f"rds-{i:02d}", f"Bureau à distance {i}", prod, role="infra", vcpus=8, memory=48)
        for i in range(1, 5)
    ]
    rows.append(_ci("service:bureau-distance", "Bureaux à distance des adhérents"))
    rows.append(
        _rel("service:bureau-distance", "depends_on", farm("farm-rds", "Ferme RDS", rds, 2))
    )
    rows.append(_rel("service:bureau-distance", "depends_on", "service:annuaire"))
    rp = [
        server(f"rproxy-{i:02d}", f"Reverse proxy {i}", prod, role="infra", vcpus=2, memory=4)
        for i in (1, 2)
    ]
    rows.append(_ci("service:publication-web", "Publication des applications web"))
    rows.append(
        _rel(
            "service:publication-web",
            "depends_on",
            farm("farm-rproxy", "Ferme reverse proxy", rp, 1),
        )
    )
    # -- database servers -----------------------------------------------------------------
    db_servers: dict[str, list[str]] = {}
    for engine in DB_ENGINES:
        for i in range(1, DB_SERVERS[engine] + 1):
            code = f"{ENGINE_PREFIX[engine]}-{i:02d}"
            # The last PostgreSQL servers run the legacy applications' bases on the legacy host.
            on = legacy if engine == "postgresql" and i > DB_SERVERS[engine] - 2 else prod
            db_servers.setdefault(engine, []).append(
                server(
                    code,
                    f"Serveur {engine} {i}",
                    on,
                    role="database",
                    vcpus=8,
                    memory=rnd.choice((48, 64, 96)),
                )
            )
    # -- applications (the real catalogue) ------------------------------------------------
    tenants_of: dict[str, int] = {}
    for u in usage:
        tenants_of[u["application_code"]] = tenants_of.get(u["application_code"], 0) + 1
    hosted = [a for a in applications if a["code"] not in SAAS]
    app_servers = PROD_SERVERS - servers_prod
    counts = _allocate(
        {a["code"]: tenants_of.get(a["code"], 0) + 2 for a in hosted}, app_servers, 1, 5
    )
    # Every hosted application has its database, except the SharePoint portals and the
    # interface, which share the SharePoint content database.
    shared_db = ("sharepoint-", "interface-")
    with_db = [a["code"] for a in hosted if not a["code"].startswith(shared_db)]
    sizes = dict(
        zip([*with_db, "sharepoint"], _split_total(rnd, DATABASE_GB, len(with_db) + 1), strict=True)
    )
    rows.append(
        _ci(
            "database:sharepoint",
            "Base de contenu SharePoint",
            engine="sqlserver",
            size_gb=sizes["sharepoint"],
            environment="production",
        )
    )
    rows.append(_rel("database:sharepoint", "hosted_on", db_servers["sqlserver"][0]))
    for app in applications:
        code = app["code"]
        key = f"application:{code}"
        attrs: dict[str, Any] = {
            k: app[k] for k in ("domain", "function", "product", "vendor") if app[k]
        }
        if app["domain"] in GDPR_BY_DOMAIN:
            attrs["gdpr"] = GDPR_BY_DOMAIN[app["domain"]]
        name = f"{app['product']} — {app['function']}" if app["function"] else app["product"]
        rows.append(_ci(key, name[:200], **attrs))
        if code in SAAS:
            continue
        legacy_app = app["domain"] in LEGACY_DOMAINS
        on = legacy if legacy_app else prod
        n = counts[code]
        names = [f"{code}-{i:02d}" for i in range(1, n + 1)]
        members = [
            server(
                s,
                f"{app['product']} {i}",
                on,
                role="application",
                vcpus=rnd.choice((2, 4, 4, 8)),
                memory=rnd.choice((8, 16, 16, 32)),
            )
            for i, s in enumerate(names, start=1)
        ]
        if n >= 3:
            target = farm(f"farm-{code}", f"Ferme {app['product']}", members, n - 1)
            rows.append(_rel(key, "hosted_on", target))
        else:
            rows.extend(_rel(key, "hosted_on", m) for m in members)
        if code.startswith(shared_db):
            rows.append(_rel(key, "depends_on", "database:sharepoint"))
        elif code in sizes:
            engine = (
                "postgresql"
                if legacy_app
                else DB_ENGINES[sum(map(ord, app["vendor"])) % len(DB_ENGINES)]
            )
            pool = db_servers[engine]
            pool = pool[-2:] if legacy_app else pool[:-2] if engine == "postgresql" else pool
            db_key = f"database:{code}"
            rows.append(
                _ci(
                    db_key,
                    f"Base {app['product']}",
                    engine=engine,
                    size_gb=sizes[code],
                    environment="production",
                )
            )
            rows.append(_rel(db_key, "hosted_on", pool[sum(map(ord, code)) % len(pool)]))
            rows.append(_rel(key, "depends_on", db_key))
        if tenants_of.get(code, 0) >= 3:
            rows.append(_rel(key, "depends_on", "service:annuaire"))
    # -- test servers: one per hosted application, the rest for test databases -------------
    for app in hosted:
        server(
            f"{app['code']}-test",
            f"{app['product']} (test)",
            test,
            env="test",
            role="application",
            vcpus=2,
            memory=8,
        )
    i = 0
    while servers_test < TEST_SERVERS:
        i += 1
        server(
            f"test-db-{i:02d}",
            f"Bases de test {i}",
            test,
            env="test",
            role="database",
            vcpus=4,
            memory=32,
        )
    # -- usage (the real matrix) -----------------------------------------------------------
    for u in usage:
        rows.append(
            {
                "record": "usage",
                "key": f"application:{u['application_code']}",
                "tenant": u["tenant_code"],
                "confidence": u["confidence"],
            }
        )
    if servers_prod != PROD_SERVERS or servers_test != TEST_SERVERS:  # pragma: no cover
        raise AssertionError(f"generated {servers_prod}+{servers_test} servers")
    return rows


OSES = {
    "infra": ("Windows Server 2019", "Debian 11", "Windows Server 2016"),
    "database": ("Red Hat Enterprise Linux 8", "Windows Server 2019", "Debian 11"),
    "application": ("Windows Server 2019", "Windows Server 2016", "Debian 11", "RHEL 7"),
}
ENGINE_PREFIX = {"oracle": "ora", "sqlserver": "mssql", "postgresql": "pg"}


def _table(rows: list[dict[str, Any]]) -> TableFile:
    columns: dict[str, str] = {}
    for row in rows:
        for name in row:
            columns.setdefault(name, name)
    return TableFile(
        [
            Row(n, {k: v for k, v in r.items() if v not in (None, "")})
            for n, r in enumerate(rows, start=2)
        ],
        columns,
        "generated",
    )


def load(progress: Callable[[str], None]) -> dict[str, int]:
    """Create the demo CMDB (only what is missing); returns what was created."""
    from config.demo import read_csv

    rows = build_rows(list(read_csv("applications.csv")), list(read_csv("application_usage.csv")))
    summary = import_table(_table(rows), actor=SYSTEM, only_create=True)
    return {
        "cis": summary["cis"]["created"],
        "relations": summary["relations"]["created"],
        "ci_usage": summary["usage"]["created"],
    }
