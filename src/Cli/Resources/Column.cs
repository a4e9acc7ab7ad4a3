using Google.Protobuf;

namespace ControlPlane.Cli.Resources;

/// <summary>One column of a kind's table: its header, how to read it, and whether only <c>-o wide</c> shows it.</summary>
internal sealed record Column(string Header, Func<IMessage, string> Value, bool Wide = false);
