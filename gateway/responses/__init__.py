"""The Responses API: translated to chat completions, streamed as typed events, stored."""
