namespace ControlPlane.Cli.Output;

/// <summary>The <c>-o</c> formats.</summary>
internal enum OutputFormat
{
    Table,
    Wide,
    Json,
    Yaml,
    /// <summary>kind/namespace/name per line, for scripts.</summary>
    Name,
}
