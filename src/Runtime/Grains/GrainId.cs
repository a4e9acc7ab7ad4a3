namespace ControlPlane.Runtime.Grains;

/// <summary>A grain's identity: its kind (one per grain class) and its key.</summary>
public readonly record struct GrainId(string Kind, string Key)
{
    public override string ToString() => $"{Kind}/{Key}";
}
