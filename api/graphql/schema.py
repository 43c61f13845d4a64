"""The GraphQL schema (merged from the domains) and the `/graphql` router.

* GraphiQL answers a browser's GET; queries also work over GET, mutations only over POST.
* Authentication failures are GraphQL errors (HTTP 200) coded `UNAUTHENTICATED`; scope
  refusals are `FORBIDDEN` with `required_scopes`; another tenant's id is `NOT_FOUND`.
  Rate limiting answers HTTP 429 as for REST.
* Service problems keep their REST meaning in `extensions {code, status, type}`; anything
  unexpected is masked ("Unexpected error." plus `request_id`).
* Depth and cost limits come from `settings.graphql`; introspection stays on.
* One unit of work per operation: the resolvers' shared session commits once when the
  operation had no errors and rolls back otherwise (see `Context.finish`).

`schema` (default limits) is what `chairfill openapi` prints to `openapi/schema.graphql`;
`create_app` builds its own with the configured limits (limits do not change the SDL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
import structlog
from fastapi.routing import APIWebSocketRoute
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult

from api.audiences.graphql import AudiencesMutation, AudiencesQuery
from api.booking.graphql import BookingMutation, BookingQuery
from api.cadences.graphql import CadencesMutation, CadencesQuery
from api.campaigns.graphql import CampaignsMutation, CampaignsQuery
from api.core.settings import GraphQLSettings
from api.graphql.context import Context, get_context
from api.graphql.errors import ProblemErrors, log_unexpected, masked_error
from api.graphql.extensions import limit_extensions
from api.messaging.graphql import MessagingMutation, MessagingQuery
from api.practice.graphql import PracticeQuery
from api.segments.graphql import SegmentsMutation, SegmentsQuery
from api.tasks.graphql import TasksMutation, TasksQuery
from api.tenancy.graphql import TenancyQuery
from api.webhooks.graphql import WebhooksMutation, WebhooksQuery

log = structlog.get_logger("chairfill.graphql")

Query = merge_types(
    "Query",
    (
        TenancyQuery,
        PracticeQuery,
        SegmentsQuery,
        AudiencesQuery,
        WebhooksQuery,
        MessagingQuery,
        CampaignsQuery,
        BookingQuery,
        TasksQuery,
        CadencesQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        SegmentsMutation,
        AudiencesMutation,
        CampaignsMutation,
        MessagingMutation,
        WebhooksMutation,
        BookingMutation,
        TasksMutation,
        CadencesMutation,
    ),
)


class ChairfillSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors (not found, missing scope, bad input) are answers, not incidents.
        log_unexpected(errors, execution_context)


def build_schema(
    settings: GraphQLSettings,
    *,
    query: type = Query,
    mutation: type | None = Mutation,
    extra_extensions: Sequence[Callable[[], SchemaExtension]] = (),
) -> ChairfillSchema:
    return ChairfillSchema(
        query=query,
        mutation=mutation,
        extensions=[*limit_extensions(settings), ProblemErrors, *extra_extensions],
    )


schema = build_schema(GraphQLSettings())


class ChairfillGraphQLRouter(GraphQLRouter[Context, None]):
    """Runs each operation in the request's unit of work (like `UnitOfWorkRoute`)."""

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Any,
    ) -> Any:
        try:
            result = await super().execute_operation(
                request=request,
                request_adapter=request_adapter,
                request_data=request_data,
                context=context,
                root_value=root_value,
                sub_response=sub_response,
            )
        except BaseException:
            await context.finish(succeeded=False)
            raise
        # Batching and streaming are off: anything but one clean result rolls back.
        succeeded = isinstance(result, ExecutionResult) and not result.errors
        try:
            await context.finish(succeeded=succeeded)
        except Exception:
            log.exception("graphql_commit_failed")
            return ExecutionResult(data=None, errors=[masked_error(None, context.request_id)])
        return result


def graphql_router(
    graphql_schema: strawberry.Schema, path: str = "/graphql"
) -> ChairfillGraphQLRouter:
    router = ChairfillGraphQLRouter(
        graphql_schema,
        path=path,
        graphql_ide="graphiql",
        context_getter=get_context,
        # No subscriptions: no websocket route and no streamed (multipart) responses.
        subscription_protocols=(),
        # The SDL (openapi/schema.graphql) documents GraphQL; the OpenAPI stays REST.
        include_in_schema=False,
    )
    router.routes = [r for r in router.routes if not isinstance(r, APIWebSocketRoute)]
    return router
