"""moto's DynamoDB with requests whose cost does not grow with the table.

Two of moto's DynamoDB operations (moto/dynamodb/models, 5.2.5) copy or walk the whole
table on each request, which under a load run made each request slower as the table grew
and the emulator's memory climb to many gigabytes (docs/local-stack.md, "The emulator's
limits"):

- `DynamoDBBackend.transact_write_items` deep-copies each table the transaction writes to,
  to put the copy back if the transaction is cancelled. Here the transaction keeps a copy
  of each item it writes, taken just before, and a cancelled one puts those items back
  (and nothing else): all or nothing, as before, at the cost of the items it names.
- `Table.query` walks every item of the table to pick the partition's (on the table's
  key) or the index partition's (on a secondary index). Here a query on the table's key
  walks the partition's items; one on an index walks the index partition's, which each
  table keeps (`IndexPartitions`) from its first query of that index on, following every
  write. moto's own query still checks each item it is given, so the partitions only
  narrow what it walks.

`installed()` patches moto in this process for a while, `install()` for good (what
scripts/moto_server.py does). `COUNTS` says how many items the transactions copied and
the queries walked (what scripts/tests/test_moto_dynamodb.py reads).

DynamoDB's requests must reach moto one at a time (scripts/moto_server.py serializes
them): the rollback, like moto's own, assumes that no other write lands meanwhile, and a
query's narrowed walk is set on the table for that query alone.
"""

import collections
import contextlib
import copy
import threading
import weakref

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_counts_lock = threading.Lock()
COUNTS = collections.Counter()  # "copied": items copied by transactions; "walked": items walked by queries


def _count(what, n):
    with _counts_lock:
        COUNTS[what] += n


class Journal:
    """The items a transaction touched, each as it was before the transaction wrote it."""

    def __init__(self):
        self.before = []  # (table, hash key, range key, the item or None)
        self.streams = {}  # id(table) -> (stream shard, its length before)

    def keep(self, table, key):
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_key, range_key)
        self.before.append((table, hash_key, range_key, copy.deepcopy(item)))
        _count("copied", 1)
        if table.stream_shard is not None and id(table) not in self.streams:
            self.streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))

    def roll_back(self):
        for table, hash_key, range_key, item in reversed(self.before):
            if range_key is not None:
                partition = table.items.get(hash_key)
                if item is not None:
                    table.items[hash_key][range_key] = item
                elif partition is not None:
                    partition.pop(range_key, None)
            elif item is not None:
                table.items[hash_key] = item
            else:
                table.items.pop(hash_key, None)
            IndexPartitions.of(table).follow(table, hash_key, range_key)
        for shard, length in self.streams.values():
            del shard.items[length:]


def transact_write_items(self, transact_items):
    """moto's `DynamoDBBackend.transact_write_items` (5.2.5), its rollback kept by item
    (`Journal`) instead of by a copy of each table."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = Journal()
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item), ..]
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type != "ConditionCheck":
                journal.keep(table, key)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            journal.roll_back()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: E722 as moto: any other failure cancels the transaction
            errors.append((type(e).__name__, str(e), original_item))

    if any(code is not None for code, _, _ in errors):
        journal.roll_back()
        raise TransactionCanceledException(errors)




class IndexPartitions:
    """A table's items by index partition, for each index queried so far: for each, the
    partition of each item (by the values of the index's hash key attributes) and the
    items of each partition, by their primary key. Kept on the table (`of`), so a table
    made anew (restored, imported) starts with none."""

    ATTRIBUTE = "_wxbridge_index_partitions"

    def __init__(self):
        self.indexes = {}  # (index name, hash key attributes) -> (partitions, partition of each key)

    @staticmethod
    def of(table):
        partitions = table.__dict__.get(IndexPartitions.ATTRIBUTE)
        if partitions is None:
            partitions = IndexPartitions()
            setattr(table, IndexPartitions.ATTRIBUTE, partitions)
            _kept_on.add(table)
        return partitions

    @staticmethod
    def partition_of(item, attributes):
        values = tuple(item.attrs.get(a) for a in attributes)
        return values if all(values) else None

    def partition(self, table, index_name, attributes, values):
        """The items of the index partition whose hash key attributes hold `values`."""
        built = self.indexes.get((index_name, attributes))
        if built is None:
            built = self.indexes[(index_name, attributes)] = ({}, {})
            for item in Table.all_items(table):
                self.place(built, attributes, (item.hash_key, item.range_key), item)
        return list(built[0].get(values, {}).values())

    def place(self, built, attributes, key, item):
        partitions, partition_of_key = built
        old = partition_of_key.pop(key, None)
        if old is not None:
            partitions[old].pop(key, None)
            if not partitions[old]:
                del partitions[old]
        new = self.partition_of(item, attributes) if item is not None else None
        if new is not None:
            partitions.setdefault(new, {})[key] = item
            partition_of_key[key] = new

    def follow(self, table, hash_key, range_key):
        """Follows a write of the item at (`hash_key`, `range_key`), whatever it did."""
        if not self.indexes:
            return
        item = table.items.get(hash_key)
        if range_key is not None:
            item = item.get(range_key) if item is not None else None
        for (_, attributes), built in self.indexes.items():
            self.place(built, attributes, (hash_key, range_key), item)


def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
          projection_expressions, index_name=None, consistent_read=False, filter_expression=None,
          hash_key_conditions=None, range_key_conditions=None, **filter_kwargs):
    """moto's `Table.query`, walking the partition's items only (module docstring)."""
    if index_name is None:
        partition = self.items.get(hash_key) if hash_key is not None else None
        if partition is None:
            items = []
        else:
            items = list(partition.values()) if self.range_key_attr else [partition]
    else:
        index = next((i for i in self.all_indexes() if i.name == index_name), None)
        attributes = tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH") if index else ()
        conditions = dict(hash_key_conditions or [])
        if attributes and set(conditions) == set(attributes):
            values = tuple(conditions[a] for a in attributes)
            items = IndexPartitions.of(self).partition(self, index_name, attributes, values)
        else:  # no such index (moto answers why), or a condition moto's walk is left to check
            items = Table.all_items(self)
    _count("walked", len(items))
    # moto's query reads the table's items through all_items() once: answered for this
    # call alone (requests reach the table one at a time).
    self.all_items = lambda: items
    try:
        return _moto["query"](
            self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
            projection_expressions, index_name, consistent_read, filter_expression,
            hash_key_conditions=hash_key_conditions, range_key_conditions=range_key_conditions, **filter_kwargs,
        )
    finally:
        del self.all_items


def put_item(self, *args, **kwargs):
    item = _moto["put_item"](self, *args, **kwargs)
    IndexPartitions.of(self).follow(self, item.hash_key, item.range_key)
    return item


def delete_item(self, hash_key, range_key):
    item = _moto["delete_item"](self, hash_key, range_key)
    IndexPartitions.of(self).follow(self, hash_key, range_key)
    return item


def update_item(self, table_name, key, *args, **kwargs):
    """moto's, which changes an existing item in place: followed whatever it did."""
    try:
        return _moto["update_item"](self, table_name, key, *args, **kwargs)
    finally:
        table = self.tables.get(table_name)
        if table is not None and table.hash_key_attr in key:
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            IndexPartitions.of(table).follow(table, hash_key, range_key)


_kept_on = weakref.WeakSet()  # the tables keeping partitions, dropped when moto is itself again

_moto = {
    "transact_write_items": DynamoDBBackend.transact_write_items,
    "update_item": DynamoDBBackend.update_item,
    "query": Table.query,
    "put_item": Table.put_item,
    "delete_item": Table.delete_item,
}
_ours = {
    "transact_write_items": (DynamoDBBackend, transact_write_items),
    "update_item": (DynamoDBBackend, update_item),
    "query": (Table, query),
    "put_item": (Table, put_item),
    "delete_item": (Table, delete_item),
}


def install():
    """Patches moto's DynamoDB in this process."""
    for name, (cls, ours) in _ours.items():
        setattr(cls, name, ours)


@contextlib.contextmanager
def installed():
    """moto's DynamoDB patched for a while (tests compare it with moto's own)."""
    install()
    try:
        yield
    finally:
        for name, (cls, _) in _ours.items():
            setattr(cls, name, _moto[name])
        # Writes from now on are not followed.
        for table in list(_kept_on):
            table.__dict__.pop(IndexPartitions.ATTRIBUTE, None)
        _kept_on.clear()
