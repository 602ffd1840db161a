"""Alert rules: which new articles alert which channels.

A rule is a name, a query in the archive's query language, the channels it goes to and
an optional digest window. An article fires a rule exactly when ``monitor search`` with
the rule's query lists it: the rules are evaluated by a ``Percolator`` (the queries
indexed once, each new article checked against them all), on the article as stored,
in the transaction that stores it and writes its alerts.

With no ``rules:`` in the configuration every tracked entity is an implicit rule,
named after it, with the query ``entity:"NAME"``, to every channel: an article alerts
when it mentions a tracked entity, as before rules existed. A channel's ``entities:``
filter routes those implicit rules: the rule of an entity it does not list does not
go to it (a rule in disguise).

``Rulebook`` parses every query when it is built, so a bad query or an unknown entity
stops whatever needs the rules at start-up, with one line naming the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from monitor.config import EntityConfig, Settings
from monitor.errors import ConfigError, QueryError
from monitor.percolate import Percolator
from monitor.query import Query, parse_query


@dataclass(frozen=True)
class Rule:
    """One rule as configured, or implied by a tracked entity (``implicit``)."""

    name: str
    query: str
    channels: tuple[str, ...]  # channel keys
    digest: float | None = None  # seconds; None: the channel's digest, else at once
    implicit: bool = False


def entity_query(name: str) -> str:
    """The query of an entity's implicit rule."""
    return 'entity:"' + name.replace('"', " ") + '"'


def rules_of(settings: Settings) -> list[Rule]:
    """The configured rules, or the implicit ones (one per tracked entity)."""
    keys = tuple(channel.key for channel in settings.alerts.channels)
    if settings.rules is not None:
        return [Rule(r.name, r.query, tuple(r.channels) if r.channels else keys, r.digest) for r in settings.rules]
    rules = []
    for entity in settings.entities:
        channels = tuple(
            channel.key
            for channel in settings.alerts.channels
            if channel.entities is None or entity.name.casefold() in {e.casefold() for e in channel.entities}
        )
        rules.append(Rule(entity.name, entity_query(entity.name), channels, implicit=True))
    return rules


class Rulebook:
    """The rules, their queries parsed and indexed; raises ``ConfigError`` naming a bad rule."""

    def __init__(self, rules: Sequence[Rule], entities: Sequence[EntityConfig]) -> None:
        self.rules = tuple(rules)
        self._by_name = {rule.name: rule for rule in self.rules}
        queries: dict[str, Query] = {}
        for rule in self.rules:
            try:
                queries[rule.name] = parse_query(rule.query)
            except QueryError as exc:
                raise _bad_rule(rule, exc) from None
        try:
            self.percolator = Percolator(queries, entities)
        except QueryError as exc:
            raise _bad_rule(self._culprit(queries, entities) or self.rules[0], exc) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> Rulebook:
        return cls(rules_of(settings), settings.entities)

    def _culprit(self, queries: Mapping[str, Query], entities: Sequence[EntityConfig]) -> Rule | None:
        """The first rule whose query the percolator refuses on its own."""
        for name, query in queries.items():
            try:
                Percolator({name: query}, entities)
            except QueryError:
                return self._by_name[name]
        return None

    def fired(self, session: Session, article_id: int) -> list[Rule]:
        """The rules the flushed article ``article_id`` fires, in the configuration's order."""
        names = set(self.percolator.matching(session, article_id))
        return [rule for rule in self.rules if rule.name in names]

    def get(self, name: str) -> Rule | None:
        return self._by_name.get(name)


def check_query(text: str, entities: Sequence[EntityConfig]) -> None:
    """``QueryError`` if ``text`` could not be a rule's query (malformed, unknown entity)."""
    Percolator({"query": parse_query(text)}, entities)


def routes(fired: Sequence[Rule]) -> dict[str, list[Rule]]:
    """Channel key → the fired rules that go to it, in the rules' order."""
    by_channel: dict[str, list[Rule]] = {}
    for rule in fired:
        for key in rule.channels:
            by_channel.setdefault(key, []).append(rule)
    return by_channel


def _bad_rule(rule: Rule, exc: QueryError) -> ConfigError:
    if rule.implicit:
        return ConfigError(f"config: entities: {rule.name!r}: {exc}")
    return ConfigError(f"config: rules: rule {rule.name!r}: {exc}")


__all__ = ["Rule", "Rulebook", "check_query", "entity_query", "routes", "rules_of"]
