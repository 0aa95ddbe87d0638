import pytest
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import graph
from klout_spark import schemas as S
from tests.factories import AS_OF, days_ago, event, events_df, shuffle_keys

WEIGHTS = {"reshare": 4.0, "reply": 3.0, "mention": 2.0, "like": 1.0, "follow": 0.25}


def _flags(spark, genuine=(), flagged=()):
    rows = [("twitter", u, True) for u in genuine] + [("twitter", u, False) for u in flagged]
    return spark.createDataFrame(rows, f"{C.NETWORK} string, {C.USER_ID} string, {S.IS_GENUINE} boolean")


def _edges(spark, events, flags, *, discount=0.5, half_life=30.0):
    result = graph.engagement_edges(
        events_df(spark, events), flags, AS_OF, window_days=90, half_life_days=half_life,
        type_weights=WEIGHTS, reciprocal_discount=discount,
    )
    assert result.columns == S.ENGAGEMENT_EDGES_SCHEMA.fieldNames()
    return {(r.src, r.dst): (r.interactions, r.weight) for r in result.collect()}


def test_edges_weigh_types_decay_and_normalize_per_engager(spark):
    events = [
        event("1", S.RESHARE, "e", "a", parent="p"),
        event("2", S.LIKE, "e", "b", parent="q", day=days_ago(30)),
        event("3", S.POST, "e", post_id="x"),  # not an interaction
    ]
    edges = _edges(spark, events, _flags(spark, genuine=["e"]))
    to_a, to_b = 4.0, 1.0 * 0.5  # a like 30 days old at half-life 30
    assert edges[("e", "a")] == (1, pytest.approx(to_a / (to_a + to_b)))
    assert edges[("e", "b")] == (1, pytest.approx(to_b / (to_a + to_b)))
    assert sum(w for _, w in edges.values()) == pytest.approx(1.0)


def test_self_loops_flagged_engagers_and_old_events_give_no_edges(spark):
    events = [
        event("1", S.REPLY, "a", "a", parent="p"),
        event("2", S.LIKE, "bot", "a", parent="p"),
        event("3", S.LIKE, "fan", "a", parent="p", day=days_ago(90)),  # outside the 90-day window
        event("4", S.LIKE, "fan", "a", parent="p"),
    ]
    edges = _edges(spark, events, _flags(spark, genuine=["a", "fan"], flagged=["bot"]))
    assert set(edges) == {("fan", "a")}
    assert edges[("fan", "a")][0] == 1


def test_reciprocal_engagement_is_discounted(spark):
    events = [
        event("1", S.RESHARE, "x", "y", parent="p"),
        event("2", S.RESHARE, "y", "x", parent="q"),
        event("3", S.RESHARE, "x", "z", parent="r"),
    ]
    edges = _edges(spark, events, _flags(spark, genuine=["x", "y"]), discount=0.25)
    # x->y keeps 4 - 0.75*4 = 1 against x->z's 4: 1/5 of x's out-weight.
    assert edges[("x", "y")][1] == pytest.approx(1.0 / 5.0)
    assert edges[("x", "z")][1] == pytest.approx(4.0 / 5.0)
    assert edges[("y", "x")][1] == pytest.approx(1.0)  # normalized: y's only edge


def test_full_discount_removes_pure_pod_pairs(spark):
    events = [event("1", S.LIKE, "x", "y", parent="p"), event("2", S.LIKE, "y", "x", parent="q")]
    assert _edges(spark, events, _flags(spark, genuine=["x", "y"]), discount=0.0) == {}


def test_trust_vector_prefers_old_verified_genuine_accounts(spark):
    rows = [
        ("twitter", "old", 365, True, False, False, False),
        ("twitter", "new", 0, False, False, False, False),
        ("twitter", "unknown", None, False, False, False, False),
        ("twitter", "spam", 365, False, True, False, False),
        ("twitter", "idle", 365, False, False, True, False),
        ("twitter", "fresh", 3, False, False, False, True),
    ]
    schema = (f"{C.NETWORK} string, {C.USER_ID} string, {S.ACCOUNT_AGE_DAYS} long, {C.VERIFIED} boolean, "
              f"{S.IS_SPAM_LIKE} boolean, {S.IS_INACTIVE} boolean, {S.IS_NEW_ACCOUNT} boolean")
    trust = {r.user_id: r.trust for r in graph.trust_vector(
        spark.createDataFrame(rows, schema), flagged_trust=0.0, full_age_days=365).collect()}
    assert trust == {"old": pytest.approx(2.0), "new": pytest.approx(0.1), "unknown": pytest.approx(0.55),
                     "spam": 0.0, "idle": 0.0, "fresh": 0.0}


def test_the_more_an_engager_acts_in_a_day_the_less_each_act_counts(spark):
    events = [event("1", S.LIKE, "e", "a", parent="p", day=days_ago(1))]
    events += [event(f"b{i}", S.LIKE, "e", f"b{i}", parent=f"q{i}", day=days_ago(1)) for i in range(4)]
    events += [event("c", S.LIKE, "e", "c", parent="r", day=days_ago(2))]
    edges = _edges(spark, events, _flags(spark, genuine=["e"]), half_life=1e9)
    # Day 1: five likes weigh 1/5 each; day 2: one like weighs 1. Out-weights sum to 1 + 1.
    assert edges[("e", "c")][1] == pytest.approx(1.0 / 2.0)
    assert edges[("e", "a")][1] == pytest.approx(0.2 / 2.0)
    assert edges[("e", "b0")][1] == edges[("e", "a")][1]


def test_node_keys_round_trip(spark):
    df = spark.createDataFrame([("reddit", "u\twith tab")], "network string, user_id string")
    key = df.select(graph.node_key(F.col("network"), F.col("user_id")).alias("node"))
    network, user_id = graph.split_node_key(F.col("node"))
    assert key.select(network, user_id).first() == ("reddit", "u\twith tab")


def test_edges_of_several_dates_equal_each_dates_own_edges(spark):
    """One multi-date pass gives each date the edges a one-date pass gives it.

    Over the dates the engagers' flags change, events enter and leave the
    window, a pair becomes reciprocal and an engager's busy day splits its weight.
    """
    dates = [days_ago(40), days_ago(20), days_ago(5), AS_OF]
    events = events_df(spark, [
        event("1", S.RESHARE, "e", "a", parent="p", day=days_ago(100)),  # out of the window from days_ago(5) on
        event("2", S.LIKE, "e", "b", parent="q", day=days_ago(30)),
        event("3", S.REPLY, "b", "e", parent="r", day=days_ago(10)),  # b returns e's engagement from here on
        event("4", S.LIKE, "e", "c", parent="s", day=days_ago(10)),
        event("5", S.MENTION, "e", "d", day=days_ago(10)),
        event("6", S.LIKE, "h", "a", parent="p", day=days_ago(3)),  # h is genuine on AS_OF only
        event("7", S.FOLLOW, "e", "a", day=AS_OF),
    ])
    flag_rows = [(d, "twitter", u, True) for d in dates for u in ("e", "b")]
    flag_rows += [(d, "twitter", "h", d == AS_OF) for d in dates]
    flags = spark.createDataFrame(
        flag_rows, f"{C.AS_OF} date, {C.NETWORK} string, {C.USER_ID} string, {S.IS_GENUINE} boolean"
    )
    params = dict(window_days=90, half_life_days=30.0, type_weights=WEIGHTS, reciprocal_discount=0.5)

    def by_date(df):
        return {(r.as_of, r.src, r.dst): (r.interactions, r.weight) for r in df.collect()}

    together = by_date(graph.engagement_edges_by_as_of(events, flags, dates, **params))
    one_by_one = {}
    for as_of in dates:
        alone = graph.engagement_edges_by_as_of(events, flags.filter(F.col(C.AS_OF) == as_of), [as_of], **params)
        one_by_one.update(by_date(alone))
    assert together.keys() == one_by_one.keys()
    for key, (interactions, weight) in one_by_one.items():
        assert together[key] == (interactions, pytest.approx(weight, rel=1e-12)), key
    assert {k for k in together if k[0] == days_ago(40)} == {(days_ago(40), "e", "a")}
    # e's reshare of a leaves the window after days_ago(20); its follow of a comes on AS_OF.
    assert [together.get((d, "e", "a"), (0,))[0] for d in dates] == [1, 1, 0, 1]
    assert (days_ago(5), "h", "a") not in together and (AS_OF, "h", "a") in together
    assert (days_ago(20), "b", "e") not in together and together[(days_ago(5), "b", "e")][1] == pytest.approx(1.0)
    # e->b is discounted by b's returned reply on the later dates: its share of e's out-weight drops.
    assert together[(days_ago(5), "e", "b")][1] < together[(days_ago(20), "e", "b")][1]


def test_the_day_rows_are_shuffled_once_for_the_busy_day_count_and_the_flags_join(spark):
    """Partitioned by engager once, the day rows need no shuffle by (engager, day) nor another for the join."""
    events = events_df(spark, [event("1", S.LIKE, "e", "a", parent="p"), event("2", S.REPLY, "a", "e", parent="q")])
    edges = graph.engagement_edges(
        events, _flags(spark, genuine=["e", "a"]), AS_OF,
        window_days=90, half_life_days=30.0, type_weights=WEIGHTS, reciprocal_discount=0.5,
    )
    shuffles = shuffle_keys(edges)
    assert f"{C.NETWORK}, {C.ACTOR_ID}, {C.EVENT_DATE}" not in shuffles
    assert shuffles.count(f"{C.NETWORK}, {C.ACTOR_ID}") == 1, shuffles
    assert {(r.src, r.dst) for r in edges.collect()} == {("e", "a"), ("a", "e")}
