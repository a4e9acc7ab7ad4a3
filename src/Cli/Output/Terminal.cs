using Spectre.Console;
using Spectre.Console.Rendering;

namespace ControlPlane.Cli.Output;

/// <summary>
/// Standard output and error: Spectre.Console consoles over them (tables, progress), plain
/// writers for lines. Colour and live displays only when the stream is a terminal; redirected
/// output is plain text that never wraps.
/// </summary>
internal sealed class Terminal
{
    public Terminal(TextWriter output, TextWriter error, bool outputIsTerminal, bool errorIsTerminal)
    {
        Out = output;
        Error = error;
        OutputIsTerminal = outputIsTerminal;
        ErrorIsTerminal = errorIsTerminal;
        Stdout = Create(output, outputIsTerminal);
        Stderr = Create(error, errorIsTerminal);
    }

    public static Terminal System { get; } = new(StandardOutput(), Console.Error, !Console.IsOutputRedirected, !Console.IsErrorRedirected);

    /// <summary>
    /// Standard output. Console.Out drops a write whose reader has gone (EPIPE) without a word, so
    /// `netctl watch … | head -1` would run on for ever; redirected output is written through a
    /// stream of its own, where that write fails (<see cref="IsBrokenPipe"/>) and netctl ends.
    /// </summary>
    private static TextWriter StandardOutput()
    {
        if (!Console.IsOutputRedirected) return Console.Out;
        var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        // Only a pipe or socket: a FileStream writes a regular file at its own offset, from 0, over
        // what the shell or an earlier command wrote there (`>>`, `{ a; b; } > file`); such a file
        // has no reader to lose.
        if (stream.CanSeek)
        {
            stream.Dispose();
            return Console.Out;
        }
        return TextWriter.Synchronized(new StreamWriter(stream, new global::System.Text.UTF8Encoding(false)) { AutoFlush = true });
    }

    /// <summary>A write to a pipe whose reader is gone (EPIPE): the reader wants no more, as `head` does.</summary>
    public static bool IsBrokenPipe(Exception e) => e is IOException { HResult: BrokenPipe };

    private const int BrokenPipe = 32; // EPIPE

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    public bool OutputIsTerminal { get; }

    public bool ErrorIsTerminal { get; }

    public IAnsiConsole Stdout { get; }

    public IAnsiConsole Stderr { get; }

    /// <summary>"error: …" on standard error (red on a terminal).</summary>
    public void Fail(string message)
    {
        if (ErrorIsTerminal) Stderr.Write(new Text("error: " + message + "\n", new Style(Color.Red)));
        else Error.WriteLine("error: " + message);
    }

    /// <summary>Aligned columns without borders, kubectl style.</summary>
    public void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var table = new Table().NoBorder().HideRowSeparators();
        table.ShowHeaders = true;
        for (var i = 0; i < headers.Count; i++)
        {
            table.AddColumn(new TableColumn(new Text(headers[i])) { Padding = new Padding(0, 0, i == headers.Count - 1 ? 0 : 3, 0), NoWrap = true });
        }
        foreach (var row in rows) table.AddRow(row.Select(v => (IRenderable)new Text(v)));
        if (OutputIsTerminal)
        {
            Stdout.Write(table);
            return;
        }
        // Redirected: plain lines without the padding after the last column (easy to parse).
        using var text = new StringWriter(global::System.Globalization.CultureInfo.InvariantCulture);
        Create(text, terminal: false).Write(table);
        foreach (var line in text.ToString().TrimEnd('\n').Split('\n')) Out.WriteLine(line.TrimEnd());
    }

    private static IAnsiConsole Create(TextWriter writer, bool terminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = 4096;
        return console;
    }
}
