using System.ComponentModel;
using System.Globalization;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// How settings read durations: .NET's own form (<c>hh:mm:ss</c>, <c>d.hh:mm:ss</c>, fractions of
/// a second after a dot), and nothing that reads as something else. .NET takes a bare number as
/// days, so <c>--ClusterSet:PeerGracePeriod=30</c> would silently mean a month; such a value is
/// refused, naming the setting, and the program stops. Installed once per process, before any
/// setting is bound (<see cref="ProgramInfo.EarlyExit"/>).
/// </summary>
public sealed class StrictDurationConverter : TimeSpanConverter
{
    private static int s_installed;

    public static void Install()
    {
        if (Interlocked.Exchange(ref s_installed, 1) == 0)
        {
            TypeDescriptor.AddAttributes(typeof(TimeSpan), new TypeConverterAttribute(typeof(StrictDurationConverter)));
        }
    }

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is string text && IsBareNumber(text)) throw new FormatException($"'{text}' is {BareNumber}");
        return base.ConvertFrom(context, culture, value);
    }

    /// <summary>Why a bare number is refused.</summary>
    public const string BareNumber = "a bare number, which .NET reads as days: write a duration as hh:mm:ss (30 seconds: 00:00:30) or d.hh:mm:ss";

    public static bool IsBareNumber(string text) => text.Trim().All(c => char.IsAsciiDigit(c) || c is '-' or '+');
}
