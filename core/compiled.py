"""Querysets compiled to SQL once, for the hottest lookups (issue 14).

Building and compiling a queryset is Python spent on every call: for the chat turn's session
lookup (a conversation with its assistant and user context, 50 columns) about 0.7 ms of its
1 ms, more than Postgres spends answering it. `CompiledQuery` asks the ORM for the statement
once per shape, with marker values standing in for the parameters, and from then on runs
that same SQL with each call's values and builds the instances iterating the queryset would
have built (`select_related` ones included, the fields' database converters applied). The
queryset stays the one definition of the query, tenant scoping included: only its
compilation is cached.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, models
from django.db.models.query import ModelIterable, get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    positions: dict[str, list[int]]  # parameter name -> where its value goes in `params`
    model: type[models.Model]
    init_list: list[str]
    model_slice: slice
    related_populators: list
    converters: dict


def _marker(field: models.Field):
    """A value of the field's type that no real parameter equals, found again in the params."""
    if isinstance(field, (models.UUIDField, models.ForeignKey)):
        return uuid.uuid4()
    if isinstance(field, models.CharField):
        return f"\x1fmarker-{uuid.uuid4().hex}"
    raise TypeError(f"no marker for {type(field).__name__} parameters")


class CompiledQuery:
    """`build(**values)` returns the queryset; `parameters` names each value's model field
    (its type makes the marker and prepares the value, as the ORM's lookup would). A value
    given as None is passed to `build` as None (the shape without that filter): each shape
    is compiled once per database alias."""

    def __init__(self, build: Callable[..., models.QuerySet], *, parameters: dict[str, models.Field]):
        self._build = build
        self._parameters = parameters
        self._shapes: dict[tuple, _Compiled] = {}

    def _compile(self, shape: tuple, using: str) -> _Compiled:
        present = {name for name, given in zip(self._parameters, shape[1:], strict=True) if given}
        markers = {name: _marker(self._parameters[name]) for name in present}
        queryset = self._build(**{name: markers.get(name) for name in self._parameters})
        if (
            queryset._iterable_class is not ModelIterable
            or queryset._prefetch_related_lookups
            or queryset._known_related_objects
            or queryset.query.annotation_select
        ):
            raise ValueError("CompiledQuery builds plain model querysets only")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        positions = {
            name: [index for index, param in enumerate(params) if param == marker]
            for name, marker in markers.items()
        }
        for name, found in positions.items():
            if not found:
                raise ValueError(f"the compiled query does not use parameter {name!r}")
        start, end = compiler.klass_info["select_fields"][0], compiler.klass_info["select_fields"][-1] + 1
        select = compiler.select
        compiled = _Compiled(
            sql=sql,
            params=tuple(params),
            positions=positions,
            model=compiler.klass_info["model"],
            init_list=[column[0].target.attname for column in select[start:end]],
            model_slice=slice(start, end),
            related_populators=get_related_populators(compiler.klass_info, select, using),
            converters=compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
        )
        self._shapes[shape] = compiled
        return compiled

    def fetch(self, *, using: str = "default", **values) -> list[models.Model]:
        shape = (using, *(values.get(name) is not None for name in self._parameters))
        compiled = self._shapes.get(shape) or self._compile(shape, using)
        connection = connections[using]
        params = list(compiled.params)
        for name, positions in compiled.positions.items():
            value = self._parameters[name].get_db_prep_value(values[name], connection, prepared=False)
            for position in positions:
                params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        instances = []
        for row in rows:
            if compiled.converters:  # as SQLCompiler.apply_converters, with this thread's connection
                row = list(row)
                for position, (functions, expression) in compiled.converters.items():
                    value = row[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[position] = value
            instance = compiled.model.from_db(using, compiled.init_list, row[compiled.model_slice])
            for populator in compiled.related_populators:
                populator.populate(row, instance)
            instances.append(instance)
        return instances


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    fields: tuple  # the fields whose values are the parameters, in order


class CompiledInsert:
    """One row's INSERT of every local concrete field of `model`, as Django's save would write
    it, compiled once per database alias. `expressions` (field name -> an expression without
    parameters) are written in SQL in place of those fields' values; `returning` names fields
    for a RETURNING clause. `as_sql(instance)` runs each field's `pre_save` (an `auto_now_add`
    timestamp is set on the instance) and prepares its value as the insert compiler does."""

    def __init__(self, model: type[models.Model], *, expressions: dict | None = None, returning: tuple = ()):
        self._model = model
        self._expressions = expressions or {}
        self._returning = returning
        self._compiled: dict[str, _CompiledInsert] = {}

    def _compile(self, using: str) -> _CompiledInsert:
        from django.db.models.sql import InsertQuery

        meta = self._model._meta
        fields = meta.local_concrete_fields
        if any(getattr(field, "get_placeholder", None) is not None for field in fields):
            raise ValueError("CompiledInsert writes fields with plain placeholders only")
        template = self._model()
        for name, expression in self._expressions.items():
            setattr(template, meta.get_field(name).attname, expression)
        query = InsertQuery(self._model)
        query.insert_values(fields, [template])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = [meta.get_field(name) for name in self._returning] or None
        [(sql, params)] = compiler.as_sql()
        valued = tuple(field for field in fields if field.name not in self._expressions)
        if len(params) != len(valued):
            raise ValueError("CompiledInsert expressions must not take parameters")
        compiled = self._compiled[using] = _CompiledInsert(sql=sql, fields=valued)
        return compiled

    def as_sql(self, instance: models.Model, *, using: str) -> tuple[str, list]:
        compiled = self._compiled.get(using) or self._compile(using)
        connection = connections[using]
        return compiled.sql, [
            field.get_db_prep_save(field.pre_save(instance, True), connection=connection)
            for field in compiled.fields
        ]
