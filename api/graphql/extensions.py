"""Limits on what one GraphQL operation may ask for (from `settings.graphql`).

Depth uses Strawberry's `QueryDepthLimiter` (a validation rule; introspection fields are
not counted). Cost is a static estimate computed before execution:

* every field costs 1, plus what is selected under it;
* a field with a `first` or `limit` argument multiplies its subtree by that number (the
  variable's value or the argument's default), and the list of items directly under it
  is not multiplied again;
* any other list of objects multiplies its subtree by 50;
* lists of scalars and introspection fields (`__schema`, `__type`, ...) are not weighed.

An operation above `max_cost` is refused before any resolver runs, with an error coded
`QUERY_TOO_COMPLEX` that states the cost and the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
    value_from_ast,
)
from strawberry.extensions import QueryDepthLimiter, SchemaExtension

from api.core.settings import GraphQLSettings

DEFAULT_LIST_SIZE = 50
PAGE_ARGUMENTS = ("first", "limit")


class _Estimator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        variable_defaults: Mapping[str, ValueNode],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.variable_defaults = variable_defaults

    def selection_cost(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, paged: bool
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, paged)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_cost(
                    selection.selection_set, self._condition(selection, parent), paged
                )
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    total += self.selection_cost(
                        fragment.selection_set, self._condition(fragment, parent), paged
                    )
        return total

    def _condition(
        self, node: InlineFragmentNode | FragmentDefinitionNode, parent: GraphQLNamedType
    ) -> GraphQLNamedType:
        if node.type_condition is None:
            return parent
        return self.schema.get_type(node.type_condition.name.value) or parent

    def field_cost(self, node: FieldNode, parent: GraphQLNamedType, paged: bool) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        fields = getattr(parent, "fields", None) or {}
        definition: GraphQLField | None = fields.get(name)
        if definition is None:  # validation already reported it
            return 1
        field_type = definition.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        named = get_named_type(field_type)
        page_size = self._page_size(definition, node)
        if page_size is not None:
            multiplier, children_paged = page_size, True
        elif isinstance(field_type, GraphQLList) and is_composite_type(named) and not paged:
            multiplier, children_paged = DEFAULT_LIST_SIZE, False
        else:
            multiplier, children_paged = 1, False
        return multiplier * (1 + self.selection_cost(node.selection_set, named, children_paged))

    def _page_size(self, definition: GraphQLField, node: FieldNode) -> int | None:
        name = next((a for a in PAGE_ARGUMENTS if a in definition.args), None)
        if name is None:
            return None
        argument = definition.args[name]
        given = next((a.value for a in node.arguments or () if a.name.value == name), None)
        if given is None:
            value = argument.default_value
        elif isinstance(given, VariableNode):
            variable = given.name.value
            if variable in self.variables:
                value = self.variables[variable]
            else:
                default = self.variable_defaults.get(variable)
                value = value_from_ast(default, argument.type) if default is not None else None
        else:
            value = value_from_ast(given, argument.type)
        # A bad value fails at execution (or in the resolver); weigh it as the default.
        return max(value, 1) if isinstance(value, int) else DEFAULT_LIST_SIZE


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
) -> int:
    root: GraphQLObjectType | None = schema.get_root_type(operation.operation)
    if root is None:  # validation already reported it
        return 0
    defaults = {
        d.variable.name.value: d.default_value
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    }
    estimator = _Estimator(schema, fragments, variables or {}, defaults)
    return estimator.selection_cost(operation.selection_set, root, paged=False)


class QueryCostLimiter(SchemaExtension):
    """Refuses, before execution, an operation whose estimated cost exceeds `max_cost`."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.result is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            operation = next(
                (
                    o
                    for o in operations
                    if ctx.operation_name is None
                    or (o.name is not None and o.name.value == ctx.operation_name)
                ),
                None,
            )
            if operation is not None:
                fragments = {
                    d.name.value: d
                    for d in document.definitions
                    if isinstance(d, FragmentDefinitionNode)
                }
                cost = operation_cost(ctx.schema._schema, operation, fragments, ctx.variables)
                if cost > self.max_cost:
                    # A result set here means graphql-core never executes the operation.
                    ctx.result = GraphQLExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"This operation's estimated cost is {cost}, above the "
                                f"maximum of {self.max_cost}. Ask for fewer items (`first`) "
                                "or fewer fields, or split it.",
                                nodes=[operation],
                                extensions={
                                    "code": "QUERY_TOO_COMPLEX",
                                    "cost": cost,
                                    "max_cost": self.max_cost,
                                },
                            )
                        ],
                    )
        yield


def limit_extensions(settings: GraphQLSettings) -> list[Callable[[], SchemaExtension]]:
    """Factories, so each operation gets its own extension instances."""
    return [
        partial(QueryDepthLimiter, max_depth=settings.max_depth),
        partial(QueryCostLimiter, max_cost=settings.max_cost),
    ]
