namespace ControlPlane.Cli.Manifests;

/// <summary>One thing wrong with one document: where (file, document, field, line) and why.</summary>
internal sealed record ManifestProblem(string Source, string Document, string? Field, int Line, string Message)
{
    public override string ToString()
    {
        var at = Line > 0 ? $" (line {Line})" : string.Empty;
        var field = Field is null ? string.Empty : $"{Field}: ";
        return $"{Source}: {Document}{at}: {field}{Message}";
    }
}
