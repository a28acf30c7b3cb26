"""The operator's tools: publisher-admin, maintenance, re-publishing, the contact
sheet, the HTTP probe of the health checks, and the schema migrations."""
