"""The train stage follows the tenants' model graphs: a spec that arrives while the worker runs
rebuilds that tenant's set at the next housekeeping tick, without a restart, and the next
checkpoint publishes it; a tenant seen first after its spec starts on its own graph."""

from __future__ import annotations

import asyncio

import pytest

from streams.control.distribution import SpecRecord
from streams.control.specs import parse
from streams.serving.snapshots import load_snapshot
from streams.state.model_sets import load_checkpoint
from tests.helpers import KEY, examples
from tests.streams.worker.fakes import fake_events, stage

GRAPH = parse({"members": {"ftrl": {"kind": "ftrl"}, "ad": {"kind": "adpredictor"}},
               "ensembles": {"blend": {"kind": "average"}}, "serve": "ensemble_blend"})

pytestmark = pytest.mark.control


def record(tenant, spec, version=1):
    return SpecRecord(tenant, version, spec, "test", 0.0)


def test_a_spec_arriving_mid_stream_rebuilds_the_set_and_is_published(tmp_path):
    st, acked = stage(tmp_path), []
    published = {}
    st.publisher.publish = lambda tenant, snap: published.__setitem__(tenant, snap)

    async def run():
        await st.handle(fake_events(examples(100), acked))
        await st.checkpoint()
        kept = st.trainer.sets["t"].models["ftrl"]
        st.rt.specs["t"] = record("t", GRAPH)  # the follower read it
        await st.sync_specs()
        await st.maybe_checkpoint(force=True)  # nothing learned since: the rebuild is saved
        return kept

    kept = asyncio.run(run())
    ms = st.trainer.sets["t"]
    assert ms.models["ftrl"] is kept  # same kind, same parameters: its learning kept
    assert set(ms.models) == {"ftrl", "ad"}
    snap = load_snapshot(published["t"], KEY)
    assert snap.outputs() == ["ftrl", "ad", "ensemble_blend"]
    assert snap.serve == "ensemble_blend"
    assert load_checkpoint(st.store.saved["t"], KEY).spec == GRAPH.encode().decode()


def test_a_new_tenant_starts_on_its_own_graph_and_others_on_the_default(tmp_path):
    st, acked = stage(tmp_path), []
    st.rt.specs["own"] = record("own", GRAPH)
    batch = examples(50, tenant="own") + examples(50, tenant="other", start=50)
    asyncio.run(st.handle(fake_events(batch, acked)))
    assert set(st.trainer.sets["own"].models) == {"ftrl", "ad"}
    assert set(st.trainer.sets["other"].models) == {"ftrl"}  # the stage's AIMASS_MODELS


def test_a_removed_spec_takes_the_tenant_back_to_the_default(tmp_path):
    st, acked = stage(tmp_path), []
    st.rt.specs["t"] = record("t", GRAPH)

    async def run():
        await st.handle(fake_events(examples(50), acked))
        del st.rt.specs["t"]  # a tombstone on the topic
        await st.sync_specs()

    asyncio.run(run())
    ms = st.trainer.sets["t"]
    assert list(ms.models) == ["ftrl"] and ms.spec == "" and ms.serve == ""
