"""The Microsoft Graph v1.0 schema (CSDL) shipped with the agent, and its validator."""

from agent.schema.csdl import EnumType, Prop, Schema, StructuredType, load_schema

__all__ = ["EnumType", "Prop", "Schema", "StructuredType", "load_schema"]
