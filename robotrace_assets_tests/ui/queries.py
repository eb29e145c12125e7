"""The GraphQL the UI test asks the webserver, written as the UI's own queries are."""

ASSET_NODES = """
{ assetNodes {
    assetKey { path }
    description
    opVersion
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
      ... on CodeReferencesMetadataEntry {
        codeReferences {
          ... on LocalFileCodeReference { filePath lineNumber }
          ... on UrlCodeReference { url }
        }
      }
    }
} }
"""

REPOSITORY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name
    jobs { name description }
    sensors { name description }
    schedules { name description }
} } } }
"""

MATERIALIZATION = """
query ($path: [String!]!, $partition: String!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        partition
        tags { key value }
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
          ... on IntMetadataEntry { intValue }
          ... on TableMetadataEntry {
            table { records schema { columns { name type } } }
          }
        }
      }
    }
  }
}
"""
