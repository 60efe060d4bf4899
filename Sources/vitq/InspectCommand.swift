import ArgumentParser
import Foundation
import VitqFormats
import VitqModels

/// `vitq inspect`: what a model file holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Print a model's family, dimensions, parameter count and tensors.")

    @Argument(help: "Model file (.safetensors).")
    var model: String
    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        try reportingErrors {
            let file = try SafeTensorsFile(path: model)
            let spec = try ModelConfigResolver.resolve(file: file, overrides: modelOptions.overrides)
            let vit = try VisionTransformer(file: file, spec: spec)
            let c = spec.vit, p = spec.preprocess
            print("file        \(model)")
            print("family      \(spec.family.rawValue)")
            print("config      \(spec.configSource)")
            print("dimensions  embed \(c.embedDim), depth \(c.depth), heads \(c.numHeads) (head dim \(c.headDim)), mlp \(c.mlpHidden), patch \(c.patchSize), image \(c.imgSize), tokens \(c.tokens), classes \(c.numClasses)")
            print("heads from  \(spec.headsSource)")
            print("preprocess  resize shorter side to \(p.resizeShorterSide) (\(p.interpolation)), crop \(p.inputSize), mean \(p.mean), std \(p.std)")
            print("parameters  \(vit.parameterCount)")
            print("tensors     \(file.tensors.count)")
            let w = file.names.map(\.count).max() ?? 10
            for name in file.names {
                let i = file.tensors[name]!
                print("  " + name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + i.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + " \(i.shape)")
            }
        }
    }
}
