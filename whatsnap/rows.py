"""Hot-path row access without the ORM's query compiler, for the webhook ack.

The ack is one indexed read and one insert; through the ORM, compiling those two statements
and resolving the model's columns was about half of its CPU (bench/README.md, issue 20). The
statements here are built once per database connection from the model's own metadata
(columns, converters, defaults), so a field added to the model is read and written here too;
values still go through each field's own conversion (encrypted fields decrypt, JSON adapts).
"""
import weakref

from django.db import DEFAULT_DB_ALIAS, connections


class RowLoader:
    """SELECT every concrete field of `model` WHERE `where` (an SQL condition on its columns,
    with %s parameters) and build the instance as the ORM would (Model.from_db)."""

    def __init__(self, model, where: str):
        self.model = model
        self.where = where
        self._plans = weakref.WeakKeyDictionary()  # connection -> (sql, attnames, converters)

    def _plan(self, connection):
        plan = self._plans.get(connection)
        if plan is None:
            meta = self.model._meta
            quote = connection.ops.quote_name
            fields = meta.concrete_fields
            sql = (f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(meta.db_table)} "
                   f"WHERE {self.where}")
            converters = []
            for index, field in enumerate(fields):
                column = field.get_col(meta.db_table)
                found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if found:
                    converters.append((index, column, found))
            plan = self._plans[connection] = (sql, [f.attname for f in fields], converters)
        return plan

    def first(self, params, *, using=None):
        connection = connections[using or DEFAULT_DB_ALIAS]  # the thread's own wrapper, not the proxy
        sql, attnames, converters = self._plan(connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for index, column, found in converters:
            for convert in found:
                values[index] = convert(values[index], column, connection)
        return self.model.from_db(connection.alias, attnames, values)


class ConflictFreeInsert:
    """INSERT a row of `model` unless it would break the unique constraint on `conflict`
    (field names): ON CONFLICT DO NOTHING RETURNING its primary key, so a duplicate is a
    no-op (None) that neither raises nor aborts an enclosing transaction. Fields not given
    take their model default, through the field's own conversion."""

    def __init__(self, model, conflict: tuple[str, ...]):
        self.model = model
        self.conflict = conflict
        self._plans = weakref.WeakKeyDictionary()

    def _plan(self, connection):
        plan = self._plans.get(connection)
        if plan is None:
            meta = self.model._meta
            quote = connection.ops.quote_name
            fields = [f for f in meta.concrete_fields if f is not meta.pk]
            target = ", ".join(quote(meta.get_field(name).column) for name in self.conflict)
            sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                   f"VALUES ({', '.join(['%s'] * len(fields))}) "
                   f"ON CONFLICT ({target}) DO NOTHING RETURNING {quote(meta.pk.column)}")
            plan = self._plans[connection] = (sql, fields)
        return plan

    def insert(self, values: dict, *, using=None):
        connection = connections[using or DEFAULT_DB_ALIAS]
        sql, fields = self._plan(connection)
        unknown = set(values) - {f.attname for f in fields}
        if unknown:
            raise TypeError(f"{self.model.__name__} has no column {sorted(unknown)}")
        params = [f.get_db_prep_save(values[f.attname] if f.attname in values else f.get_default(), connection)
                  for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None
