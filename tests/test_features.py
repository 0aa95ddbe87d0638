import math
from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import features
from klout_spark import schemas as S
from tests.factories import AS_OF, days_ago, event, events_df, profile, profiles_df, shuffle_keys, ts

HALF_LIFE = 14.0
QUALITY_PARAMS = dict(
    spam_max_engagements_per_day=50, spam_max_follows_30d=100, spam_min_follow_back=0.05,
    spam_min_output_30d=200, spam_max_response_rate=0.02, new_account_days=30,
    boost_min_follows_30d=50, boost_max_follows_per_engager=10,
)


def _daily_row(user, day, posts=0, engagements_sent=0, network="twitter"):
    values = {name: 0 for name in S.USER_DAILY_SCHEMA.fieldNames()}
    values.update({C.NETWORK: network, C.USER_ID: user, C.EVENT_DATE: day,
                   "posts_sent": posts, S.ENGAGEMENTS_SENT: engagements_sent})
    return tuple(values[name] for name in S.USER_DAILY_SCHEMA.fieldNames())


def test_user_daily_counts_sent_and_received_per_day(spark):
    events = events_df(spark, [
        event("e1", S.POST, "u1", post_id="p1"),
        event("e2", S.LIKE, "u2", "u1", parent="p1"),
        event("e3", S.RESHARE, "u3", "u1", post_id="p3", parent="p1"),
        event("e4", S.REPLY, "u2", "u1", post_id="p4", parent="p1"),
        event("e5", S.REPLY, "u1", "u1", post_id="p5", parent="p1"),  # replying to oneself
        event("e6", S.FOLLOW, "u3", "u1", day=days_ago(1)),
    ])
    rows = {(r.user_id, r.event_date): r for r in features.user_daily(events).collect()}
    u1 = rows[("u1", AS_OF)]
    assert (u1.posts_sent, u1.replies_sent) == (1, 1)
    assert (u1.likes_received, u1.reshares_received, u1.replies_received) == (1, 1, 1)
    assert (u1.engagements_received, u1.engagers, u1.posts_engaged) == (3, 2, 1)
    assert rows[("u2", AS_OF)].engagements_sent == 2
    assert rows[("u1", days_ago(1))].follows_received == 1
    assert rows[("u1", days_ago(1))].engagements_received == 0  # a follow is not engagement


def test_windowed_features_sum_trailing_frames_and_decay(spark):
    posts_by_age = {0: 2, 6: 3, 7: 5, 29: 7, 30: 11, 89: 13, 90: 17}
    rows = [_daily_row("u", days_ago(age), posts=n) for age, n in posts_by_age.items()]
    rows.append(_daily_row("u", AS_OF + timedelta(days=1), posts=19))  # after as_of: never counted
    daily = spark.createDataFrame(rows, S.USER_DAILY_SCHEMA)
    (row,) = features.windowed_features(daily, [AS_OF], half_life_days=HALF_LIFE, inactive_days=30).collect()
    assert row.posts_sent_7d == 2 + 3
    assert row.posts_sent_30d == 2 + 3 + 5 + 7
    assert row.posts_sent_90d == 2 + 3 + 5 + 7 + 11 + 13
    expected_decayed = sum(n * 0.5 ** (age / HALF_LIFE) for age, n in posts_by_age.items() if age < 90)
    assert row.posts_sent_decayed == pytest.approx(expected_decayed, rel=1e-12)
    assert row[S.ACTIVE_DAYS_30D] == 4
    assert row.own_activity == 2 + 3 + 5 + 7


def test_one_pass_computes_many_as_of_dates_point_in_time(spark):
    rows = [_daily_row("u", days_ago(age), posts=n) for age, n in {0: 2, 6: 3, 7: 5, 8: 1}.items()]
    daily = spark.createDataFrame(rows, S.USER_DAILY_SCHEMA)
    week_ago = days_ago(7)
    got = {
        r.as_of: r.posts_sent_7d
        for r in features.windowed_features(
            daily, [AS_OF, week_ago], half_life_days=HALF_LIFE, inactive_days=30
        ).collect()
    }
    assert got == {AS_OF: 5.0, week_ago: 6.0}


def test_account_idle_on_as_of_still_gets_a_row_with_its_window(spark):
    daily = spark.createDataFrame([_daily_row("u", days_ago(3), posts=4)], S.USER_DAILY_SCHEMA)
    (row,) = features.windowed_features(daily, [AS_OF], half_life_days=HALF_LIFE, inactive_days=2).collect()
    assert (row.as_of, row.posts_sent_7d, row.posts_sent_decayed) == (AS_OF, 4.0, pytest.approx(4 * 0.5 ** (3 / 14)))
    assert row.own_activity == 0  # nothing in the last 2 days


def test_an_account_gets_a_row_for_exactly_the_dates_whose_90_days_hold_its_activity(spark):
    # The window of as_of days_ago(n) holds days_ago(a) when n <= a <= n + 89.
    daily = spark.createDataFrame(
        [_daily_row("u", days_ago(100), posts=1), _daily_row("u", days_ago(5), posts=1),
         _daily_row("v", days_ago(95), posts=1)],
        S.USER_DAILY_SCHEMA,
    )
    ages = (0, 4, 5, 6, 9, 10, 11)
    rows = features.windowed_features(
        daily, [days_ago(n) for n in ages], half_life_days=HALF_LIFE, inactive_days=30
    ).collect()
    got = sorted((r.user_id, (AS_OF - r.as_of).days) for r in rows)
    assert got == [("u", 0), ("u", 4), ("u", 5), ("u", 11), ("v", 6), ("v", 9), ("v", 10), ("v", 11)]


def _features(spark, events, profiles=(), **overrides):
    params = dict(QUALITY_PARAMS, half_life_days=HALF_LIFE, inactive_days=30)
    params.update(overrides)
    events_frame = events_df(spark, events)
    daily = features.user_daily(events_frame)
    result = features.user_features(spark, daily, events_frame, profiles_df(spark, list(profiles)), AS_OF, **params)
    return {r.user_id: r for r in result.collect()}


def test_flags_inactive_and_spam_like_accounts(spark):
    events = [event("p", S.POST, "author", post_id="p1")]
    events += [event(f"s{i}", S.LIKE, "bot", "author", parent="p1") for i in range(60)]  # 60 a day > 50
    events += [event("h", S.LIKE, "human", "author", parent="p1")]
    rows = _features(spark, events)
    assert rows["bot"].is_spam_like and not rows["bot"].is_inactive
    assert not rows["human"].is_spam_like and not rows["human"].is_inactive
    # 'author' only posted: active. An account that only receives is inactive.
    assert not rows["author"].is_inactive
    only_received = _features(spark, [event("l", S.LIKE, "fan", "lurker", parent="x")])
    assert only_received["lurker"].is_inactive


def test_follow_churn_is_spam_like(spark):
    events = [event(f"f{i}", S.FOLLOW, "churner", f"t{i}") for i in range(120)]
    rows = _features(spark, events, [profile("churner", days_ago(1), followers=2, following=5000)])
    assert rows["churner"].is_spam_like
    assert not rows["t0"].is_spam_like


def test_genuine_engagement_ignores_spam_self_and_counts_distinct(spark):
    events = [event("p1", S.POST, "a", post_id="p1", day=days_ago(3)),
              event("p2", S.POST, "a", post_id="p2", day=days_ago(2))]
    events += [event(f"s{i}", S.LIKE, "bot", "a", parent="p1") for i in range(60)]
    events += [
        event("r1", S.RESHARE, "h1", "a", post_id="r1", parent="p1"),
        event("r2", S.RESHARE, "h1", "a", post_id="r2", parent="p1"),
        event("r3", S.REPLY, "h2", "a", post_id="r3", parent="p2", day=days_ago(1)),
        event("self", S.REPLY, "a", "a", post_id="r4", parent="p2"),
        event("old", S.LIKE, "h3", "a", parent="p0", day=days_ago(40)),
    ]
    row = _features(spark, events)["a"]
    assert row.genuine_engagers_30d == 2  # h1, h2: not the bot, not a itself
    assert row.amplified_posts_30d == 2
    assert row.genuine_reshares_30d == 2
    # h3 did nothing in the last 30 days, so h3 is inactive and its old like counts for no one.
    # h1's two reshares on one day weigh 1/2 each.
    expected = 2 * 0.5 + 0.5 ** (1 / HALF_LIFE)
    assert row.genuine_engagements_decayed == pytest.approx(expected)


def test_the_engagements_are_shuffled_by_engager_and_never_by_day(spark):
    events = events_df(spark, [event("1", S.LIKE, "h", "a", parent="p"), event("2", S.REPLY, "h", "b", parent="q")])
    flags = spark.createDataFrame(
        [(AS_OF, "twitter", "h", True)], f"{C.AS_OF} date, {C.NETWORK} string, {C.USER_ID} string, {S.IS_GENUINE} boolean"
    )
    received = features.genuine_engagement_by_as_of(events, flags, [AS_OF], half_life_days=HALF_LIFE)
    # Shuffled by engager before the day's count, the day rows need no shuffle by day, for the
    # count nor for their grouping per (author, engager, day).
    shuffles = shuffle_keys(received)
    assert not [keys for keys in shuffles if C.EVENT_DATE in keys], shuffles
    assert {(r.user_id, r.genuine_engagers_30d) for r in received.collect()} == {("a", 1), ("b", 1)}


def test_latest_profile_before_the_end_of_as_of_is_used(spark):
    profiles = [
        profile("a", days_ago(10), followers=10, created=days_ago(400)),
        profile("a", AS_OF, followers=20, created=days_ago(400), verified=True),
        profile("a", AS_OF + timedelta(days=1), followers=999),
    ]
    row = _features(spark, [event("p", S.POST, "a", post_id="p")], profiles)["a"]
    assert (row.followers_count, row.verified, row.account_age_days) == (20, True, 400)


def test_latest_profile_of_each_as_of_is_the_newest_taken_by_its_end(spark):
    def snapshot(user, day, followers, *, hour=12, event_id=None):
        row = list(profile(user, day, followers=followers))
        row[2] = ts(day, hour)
        row[9] = event_id or row[9]
        return tuple(row)

    profiles = profiles_df(spark, [
        snapshot("a", days_ago(10), 10),
        snapshot("a", days_ago(5), 50, hour=8),
        snapshot("a", days_ago(5), 55, hour=20),  # later the same day: it wins from that day on
        snapshot("a", days_ago(2), 60, event_id="prof-a-1"),
        snapshot("a", days_ago(2), 61, event_id="prof-a-2"),  # same instant: the larger event id wins
        snapshot("a", AS_OF + timedelta(days=1), 999),
        snapshot("b", days_ago(3), 7),
    ])
    dates = [days_ago(n) for n in (12, 10, 6, 5, 3, 2)] + [AS_OF]
    got = {
        (r.user_id, r.as_of): r.followers_count
        for r in features.latest_profiles_by_as_of(profiles, features.as_of_frame(spark, dates)).collect()
    }
    assert got == {
        ("a", days_ago(10)): 10, ("a", days_ago(6)): 10, ("a", days_ago(5)): 55, ("a", days_ago(3)): 55,
        ("a", days_ago(2)): 61, ("a", AS_OF): 61,
        ("b", days_ago(3)): 7, ("b", days_ago(2)): 7, ("b", AS_OF): 7,
    }


def test_features_for_a_date_ignore_later_events(spark):
    base = [event("p", S.POST, "a", post_id="p1", day=days_ago(1)),
            event("l", S.LIKE, "b", "a", parent="p1")]
    later = [event("x", S.LIKE, "c", "a", parent="p1", day=AS_OF + timedelta(days=1)),
             event("y", S.POST, "a", post_id="p9", day=AS_OF + timedelta(days=2))]
    before = _features(spark, base)
    after = _features(spark, base + later)
    assert before == after


def test_a_multi_date_pass_gives_each_date_the_bits_of_its_own_pass(spark):
    """Spine, profiles, flags and genuine engagement of many dates in one pass equal each date alone, exactly."""
    dates = [days_ago(n) for n in (40, 12, 5, 1, 0)]
    rows = [event(f"p{i}", S.POST, author, post_id=f"{author}{i}", day=days_ago(age))
            for i, (author, age) in enumerate([("a", 50), ("a", 10), ("b", 3), ("c", 60), ("c", 2)])]
    # Engagers acting once or several times a day, at ages that decay differently for each date.
    for i, (engager, author, age, kind) in enumerate([
        ("b", "a", 45, S.LIKE), ("b", "a", 9, S.RESHARE), ("c", "a", 9, S.REPLY), ("c", "a", 9, S.LIKE),
        ("a", "b", 2, S.QUOTE), ("a", "c", 1, S.LIKE), ("d", "a", 30, S.LIKE), ("b", "c", 0, S.RESHARE),
    ]):
        rows.append(event(f"e{i}", kind, engager, author, parent=f"{author}1", day=days_ago(age)))
    events = events_df(spark, rows)
    profiles = profiles_df(spark, [profile("a", days_ago(100), followers=5, created=days_ago(900)),
                                   profile("a", days_ago(8), followers=50, created=days_ago(900)),
                                   profile("c", days_ago(3), followers=9, created=days_ago(20))])
    params = dict(QUALITY_PARAMS, half_life_days=HALF_LIFE, inactive_days=30)
    daily = features.user_daily(events)

    def by_key(df):
        return {(r.as_of, r.user_id): r.asDict() for r in df.collect()}

    together = by_key(features.user_features_by_as_of(spark, daily, events, profiles, dates, **params))
    alone = {}
    for as_of in dates:
        alone.update(by_key(features.user_features_by_as_of(spark, daily, events, profiles, [as_of], **params)))
    assert together == alone
    # Each date has engagement of a genuine engager for "a" (b's, or d's while b is inactive).
    assert {as_of for (as_of, user), r in together.items() if user == "a" and r[S.GENUINE_ENGAGEMENTS_DECAYED] > 0} == set(dates)


def test_user_features_output_matches_the_table_schema(spark):
    events = events_df(spark, [event("p", S.POST, "a", post_id="p")])
    result = features.user_features(
        spark, features.user_daily(events), events, profiles_df(spark, []), AS_OF,
        half_life_days=HALF_LIFE, inactive_days=30, **QUALITY_PARAMS,
    )
    assert result.columns == S.USER_FEATURES_SCHEMA.fieldNames()
    assert result.filter(F.col(C.USER_ID) == "a").first()[S.GENUINE_ENGAGERS_30D] == 0
    assert math.isclose(result.first()["posts_sent_90d"], 1.0)
